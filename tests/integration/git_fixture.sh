#!/usr/bin/env bash
# Servers and repositories for the git/ssh integration tests, all on 127.0.0.1:
#   git_fixture.sh start DIR   makes DIR/srv/{repo,lib}.git (repo has an app/
#                              context, a submodule lib -> ../lib.git, branch
#                              main, annotated tag v1), ssh keys (id_user
#                              authorized, id_wrong not), an sshd (Debian
#                              openssh-server) on DIR/ssh_port serving them
#                              as root, a dumb-HTTP server (python3
#                              http.server over `git update-server-info`
#                              output) on DIR/http_port, the same behind
#                              a GIT_AUTH_TOKEN check (git_auth_http.py,
#                              token in DIR/auth_token) on DIR/auth_port,
#                              and DIR/gitbox: a
#                              busybox rootfs with the host's git, ssh and
#                              ssh-add (and their libraries)
#   git_fixture.sh stop DIR    stops the servers (by their recorded pids)
set -euo pipefail
cmd=${1:?usage: git_fixture.sh start|stop DIR}
dir=${2:?usage: git_fixture.sh start|stop DIR}
here=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$cmd" = stop ]; then
  for f in "$dir/sshd.pid" "$dir/http.pid" "$dir/auth.pid"; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  exit 0
fi

mkdir -p "$dir/srv" /run/sshd
cd "$dir"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
g() { git -c user.email=t@example.com -c user.name=test -c protocol.file.allow=always "$@"; }

# Repositories: lib (a submodule), repo (the main one).
git init -q -b main lib-work
echo "lib file" > lib-work/lib.txt
g -C lib-work add -A && g -C lib-work commit -qm lib
git clone -q --bare lib-work srv/lib.git
git init -q -b main work
mkdir -p work/app
printf 'FROM scratch\nCOPY . /app/\n' > work/app/Dockerfile
echo "hello from git" > work/app/hello.txt
printf '#!/bin/sh\necho run\n' > work/run.sh && chmod +x work/run.sh
g -C work remote add origin "$dir/srv/repo.git"
g -C work submodule -q add ../lib.git lib
g -C work add -A && g -C work commit -qm one
g -C work tag -a v1 -m v1
git clone -q --bare work srv/repo.git
for r in srv/*.git; do git -C "$r" update-server-info; done

# ssh: host key, an authorized user key, a key the server does not know.
ssh-keygen -q -t ed25519 -N '' -f host_key
ssh-keygen -q -t ed25519 -N '' -C user -f id_user
ssh-keygen -q -t ed25519 -N '' -C wrong -f id_wrong
cp id_user.pub authorized_keys
ssh_port=$(free_port)
cat > sshd_config <<CFG
Port $ssh_port
ListenAddress 127.0.0.1
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
PidFile $dir/sshd.pid
CFG
/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
echo "$ssh_port" > ssh_port

http_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$dir/srv" "$http_port" >"$dir/http.log" 2>&1 &
echo $! > http.pid
echo "$http_port" > http_port
# The same repositories behind BuildKit's GIT_AUTH_TOKEN (token in DIR/auth_token).
auth_port=$(free_port)
echo "fixture-token-5e1f0a" > auth_token
GIT_TEST_TOKEN=$(cat auth_token) python3 "$here/tests/integration/git_auth_http.py" \
  "$auth_port" "$dir/srv" >"$dir/auth.log" 2>&1 &
echo $! > auth.pid
echo "$auth_port" > auth_port
for p in "$http_port" "$auth_port"; do
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $p), 1)" 2>/dev/null && break
    sleep 0.1
  done
done
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $ssh_port), 1)" 2>/dev/null && break
  sleep 0.1
done

# gitbox: busybox plus the host's git, ssh and ssh-add with their libraries.
"$here/tools/make-busybox-rootfs.sh" gitbox >/dev/null
for b in /usr/bin/git /usr/bin/ssh /usr/bin/ssh-add; do
  install -D -m 0755 "$b" "gitbox$b"
  for lib in $(ldd "$b" | awk '/=>/ {print $3} !/=>/ && /^\t\// {print $1}'); do
    [ -e "gitbox$lib" ] || install -D -m 0755 "$lib" "gitbox$lib"
  done
done
mkdir -p gitbox/usr/lib/git-core
cp gitbox/usr/bin/git gitbox/usr/lib/git-core/git
