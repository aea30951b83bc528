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

}  // namespace strata::cli
