#!/usr/bin/env python3
# Mutation fuzzer for the Dockerfile frontend: mutates the corpus in
# testdata/dockerfiles and runs `strata parse` on each; any exit other than 0/1,
# or an "internal error", is a crash, saved as /tmp/fuzz_crash_N.
#   N=2000 tools/fuzz/parse_fuzz.py build/strata [SEED]
import os, random, subprocess, glob, sys
random.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
binary = sys.argv[1]
files = glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../testdata/dockerfiles/*/Dockerfile'))
seeds = [open(f, 'rb').read() for f in files]
tokens = [b'$', b'${', b'}', b'\\', b'\n', b'"', b"'", b'<<', b'<<-', b'EOF', b'--', b'=', b'[', b']', b'#', b'`', b':-', b'##', b'%%', b'/', b'\r', b'\x00', b'\xff', b'99999999999999999999', b'--mount=type=cache,', b'--interval=', b'.', b' ']
crashes = 0
for it in range(int(os.environ.get('N', '1500'))):
    data = bytearray(random.choice(seeds))
    for _ in range(random.randint(1, 8)):
        op = random.random()
        pos = random.randint(0, len(data))
        if op < 0.4:
            data[pos:pos] = random.choice(tokens)
        elif op < 0.7 and len(data) > 1:
            del data[pos:pos + random.randint(1, 10)]
        else:
            data[pos:pos] = bytes([random.randint(0, 255)])
    open('/tmp/fuzz_df', 'wb').write(data)
    r = subprocess.run([binary, 'parse', '/tmp/fuzz_df'], capture_output=True, timeout=20)
    if r.returncode not in (0, 1) or b'internal error' in r.stderr:
        crashes += 1
        open(f'/tmp/fuzz_crash_{crashes}', 'wb').write(data)
        print('CRASH rc', r.returncode, r.stderr[-300:])
        if crashes > 5: break
print('done, crashes:', crashes)
