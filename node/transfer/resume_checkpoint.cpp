#include "node/transfer/resume_checkpoint.h"

#include <unistd.h>

#include <cerrno>

#include "core/file_io.h"

namespace flotilla::node {

Status SaveResumeCheckpoint(Env& env, const std::string& payload_path,
                            const std::string& resume_path, ByteSpan resume_data) {
  if (::access(payload_path.c_str(), F_OK) == 0) {
    ASSIGN_OR_RETURN(auto payload, env.OpenForWrite(payload_path, OpenMode::kKeep, 0644));
    RETURN_IF_ERROR(payload->Sync().WithContext("sync " + payload_path));
    RETURN_IF_ERROR(payload->Close());
  } else if (errno != ENOENT) {
    return IOErrorFromErrno("access " + payload_path, errno);
  }
  return WriteFileAtomic(resume_path, resume_data, 0600, env);
}

}  // namespace flotilla::node
