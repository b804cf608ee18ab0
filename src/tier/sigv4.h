// SigV4: AWS Signature Version 4 request signing (HMAC SHA-256 via OpenSSL), as the S3 store
// uses it. Pure functions over plain values: no I/O, no clock, no global state, so the published
// AWS test vectors check them exactly.
//
// The caller builds the request it will send (method, encoded path, query, headers including
// host and x-amz-date, and x-amz-security-token with temporary credentials), then adds the
// Authorization header that SignV4 returns. Every header passed in is signed.
//
// Secrets: the secret key only enters the HMAC chain; nothing here logs. The returned
// Authorization value carries a signature and must not be logged either.
// Thread-safety: all functions are thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::tier {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // empty unless temporary credentials (sent as x-amz-security-token)
};

struct SigV4Request {
  std::string method;  // "GET", "PUT", ...
  // The canonical URI: the request path as sent, already URI-encoded ("/bucket/a%20b").
  std::string path;
  // Query parameters, not encoded; SignV4 encodes and sorts them.
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign, any case and order; duplicates are joined with ','.
  std::vector<std::pair<std::string, std::string>> headers;
  // Hex SHA-256 of the body (or "UNSIGNED-PAYLOAD").
  std::string payload_sha256;
};

// RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9 - . _ ~ is encoded as
// %XX (upper case); '/' too unless encode_slash is false (object key paths).
std::string UriEncode(std::string_view s, bool encode_slash);
// Lower-case hex of the bytes.
std::string HexEncode(std::string_view bytes);
// Lower-case hex SHA-256 of data.
std::string Sha256Hex(std::string_view data);
// Raw 32-byte HMAC-SHA256 of data under key.
std::string HmacSha256(std::string_view key, std::string_view data);

// "a=1&b=x%20y": encoded, sorted by key then value. Also the query string to put in the URL.
std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query);
// "host;x-amz-date": the lower-cased, sorted names of the headers.
std::string SignedHeaderNames(const SigV4Request& request);
// The canonical request text (step 1 of SigV4), for tests and debugging.
std::string CanonicalRequest(const SigV4Request& request);

// The value of the Authorization header for request:
// "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request,
//  SignedHeaders=host;x-amz-date, Signature=<hex>". timestamp is "20150830T123600Z" and must
// equal the x-amz-date header.
std::string SignV4(const SigV4Request& request, const Credentials& credentials,
                   std::string_view region, std::string_view service, std::string_view timestamp);

}  // namespace cairn::tier
