// S3ObjectStore: an ObjectStore on an S3 bucket prefix (s3://bucket/prefix), spoken over HTTP(S)
// with libcurl and signed with SigV4. Works with AWS and S3-compatible servers.
//
// Configuration follows the AWS conventions, read once at open:
//   AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL  (default https://s3.REGION.amazonaws.com)
//   AWS_REGION or AWS_DEFAULT_REGION         (default us-east-1)
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, else the profile AWS_PROFILE
//   (or "default") of AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials
//   AWS_S3_ADDRESSING_STYLE=path|virtual     (default: path with an endpoint URL, else virtual)
//
// Behaviour: keys are relative to the prefix; bodies over StoreOptions::multipart_threshold go up
// as multipart uploads in parts of part_size (aborted on failure); at most max_parallel requests
// are in flight; 5xx, 429, timeouts and connection errors are retried with exponential backoff
// and full jitter within max_attempts and the call's deadline, then reported as kUnavailable with
// the operation, the key and the last error. 403 is kAccess, 404 kNotFound, 412 kChanged.
// Secrets (secret key, session token, signatures) never appear in messages or logs.
//
// Ownership: the store owns a pool of curl handles (kept connections); callers own their buffers.
// Thread-safety: every method may be called from many threads at once.
#pragma once

#include <memory>
#include <string_view>

#include "tier/object_store.h"

namespace cairn::tier {

// bucket_and_prefix: "bucket" or "bucket/some/prefix" (no scheme, no leading '/').
// kInvalid for a bad bucket name, endpoint URL or missing credentials.
Result<std::unique_ptr<ObjectStore>> OpenS3ObjectStore(std::string_view bucket_and_prefix,
                                                       const StoreOptions& options);

}  // namespace cairn::tier
