// One function per verb, each defined in tools/strata/cmd_<verb>.cc.
#pragma once

#include "tools/strata/cli.h"

namespace strata::cli {

Verb ImagesVerb();
Verb InspectVerb();
Verb TagVerb();
Verb RmiVerb();
Verb HistoryVerb();
Verb FsckVerb();
Verb PruneVerb();
Verb SaveVerb();
Verb LoadVerb();
Verb PullVerb();    // cmd_pull.cc
Verb PushVerb();    // cmd_push.cc
Verb LoginVerb();   // cmd_login.cc
Verb LogoutVerb();  // cmd_login.cc
Verb BuildVerb();
Verb ImportVerb();
Verb UnpackVerb();
Verb ParseVerb();
Verb DiffVerb();    // cmd_diff.cc
Verb DfVerb();      // cmd_df.cc
Verb BinfmtVerb();  // cmd_binfmt.cc
Verb AttestVerb();  // cmd_attest.cc
Verb ManifestVerb();  // cmd_manifest.cc

}  // namespace strata::cli
