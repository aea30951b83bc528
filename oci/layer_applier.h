// TarEntryApplier: applies the entries of one layer's tar stream onto a root
// directory, the file-system half of ApplyTar (oci/layer_reader.h; the
// contract and the safety rules are described there). Internal to
// oci/layer_reader.cc and oci/layer_applier.cc.
//
// Every parent is resolved inside the root (symlinks clamped), an entry's
// final component is never followed, whiteouts apply in the requested form,
// and each path created is journaled so that Rollback restores the target
// (an empty target is emptied again). Used from one thread.
#pragma once

#include <memory>

#include "oci/layer_reader.h"
#include "oci/util/archive_handle.h"
#include "oci/util/error.h"

namespace strata::oci {

class TarEntryApplier {
 public:
  // `root_fd`: the target directory (not owned; outlives the applier).
  static std::unique_ptr<TarEntryApplier> New(int root_fd, const ApplyOptions& opts);
  virtual ~TarEntryApplier() = default;

  // Decides how a failure is undone; call before the first Apply.
  virtual Status Start() = 0;
  // Applies the entry `e` just read from `a` (its data is read from `a`).
  virtual Status Apply(archive* a, archive_entry* e) = 0;
  // Sets the deferred directory metadata once every entry is applied.
  virtual Status Finish() = 0;
  // Undoes what this layer did to the target.
  virtual Status Rollback() = 0;
  // True if the last failed Apply failed reading the stream (corrupt data),
  // not writing the target.
  virtual bool stream_error() const = 0;
};

}  // namespace strata::oci
