// The one parallel-for: runs fn(0..n-1) on up to `jobs` threads (the caller's
// thread included when jobs <= 1). Work is handed out in index order.
//
//   kStopAtFirstError: no new index starts after a failure; returns the
//     first error to happen (pull/push of blobs).
//   kRunAll: every index runs; returns the error of the lowest failing
//     index (independent build stages: the result does not depend on timing).
//
// `fn` must be safe to call from several threads at once.
#pragma once

#include <cstddef>
#include <functional>

#include "oci/util/error.h"

namespace strata {

enum class ParallelMode { kStopAtFirstError, kRunAll };

Status ParallelFor(size_t n, int jobs, const std::function<Status(size_t)>& fn,
                   ParallelMode mode = ParallelMode::kStopAtFirstError);

}  // namespace strata
