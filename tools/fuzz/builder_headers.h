// The builder headers the fuzz targets use, in one place: they are moving
// from builder/ to builder/frontend/, and whichever location exists is used,
// so the targets build on both sides of that move.
#pragma once

#if __has_include("builder/frontend/dockerfile_parser.h")
#include "builder/frontend/dockerfile_parser.h"
#include "builder/frontend/dockerignore.h"
#include "builder/frontend/instructions.h"
#include "builder/frontend/plan.h"
#include "builder/frontend/shell_lexer.h"
#else
#include "builder/dockerfile_parser.h"
#include "builder/dockerignore.h"
#include "builder/instructions.h"
#include "builder/plan.h"
#include "builder/shell_lexer.h"
#endif
