#include "snap/manifest.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "common/file.h"
#include "meta/schema.h"

namespace cairn::snap {
namespace {

using Json = nlohmann::json;

std::string ToHex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// The bytes the manifest checksum covers: compact JSON, keys sorted (nlohmann's object order).
std::string Canonical(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Status Bad(std::string_view key, std::string_view why) {
  return Status(Code::kCorruption, fmt::format("snapshot object {}: {}", key, why));
}

}  // namespace

std::string ManifestKey(std::string_view name, std::string_view uuid) {
  return fmt::format("snapshots/{}/{}.json", name, uuid);
}
std::string MetaKey(std::string_view uuid, std::string_view sha256_hex) {
  return fmt::format("{}/meta/{}", uuid, sha256_hex);
}
std::string RefsKey(std::string_view uuid) { return fmt::format("refs/{}.json", uuid); }

std::string KeyOwner(std::string_view key) {
  auto slash = key.find('/');
  if (slash == std::string_view::npos || key.starts_with("snapshots/") ||
      key.starts_with("refs/")) {
    return "";
  }
  return std::string(key.substr(0, slash));
}

Status CheckSnapshotName(std::string_view name) {
  if (name.empty()) return Status(Code::kInvalid, "a snapshot needs a name");
  if (name.size() > 128) return Status(Code::kNameTooLong, "snapshot names are at most 128 bytes");
  if (name.front() == '.') return Status(Code::kInvalid, "snapshot names cannot start with '.'");
  if (name.find('@') != std::string_view::npos) {
    return Status(Code::kInvalid, "snapshot names cannot contain '@'");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return Status(Code::kInvalid, "snapshot names cannot contain control characters");
    }
  }
  Status st = meta::CheckName(name);
  if (!st.ok()) return Status(st.code(), "bad snapshot name: " + st.message());
  return Status::Ok();
}

std::vector<std::string> Manifest::Keys() const {
  std::vector<std::string> keys;
  for (const auto& m : metadata) keys.push_back(m.key);
  for (const auto& s : segments) keys.push_back(s.key);
  return keys;
}

std::string EncodeManifest(const Manifest& m) {
  Json meta = Json::array();
  for (const auto& f : m.metadata) {
    meta.push_back({{"file", f.file}, {"key", f.key}, {"size", f.size}, {"sha256", f.sha256}});
  }
  Json segs = Json::array();
  for (const auto& s : m.segments) {
    segs.push_back({{"id", s.id}, {"key", s.key}, {"size", s.size}});
  }
  Json body = {
      {"format", kManifestFormat}, {"version", m.version},       {"name", m.name},
      {"fs_uuid", m.fs_uuid},      {"created", m.created},       {"created_nsec", m.created_nsec},
      {"pushed", m.pushed},        {"inline_max", m.inline_max}, {"segment_size", m.segment_size},
      {"files", m.files},          {"file_bytes", m.file_bytes}, {"metadata", meta},
      {"segments", segs}};
  const std::string text = Canonical(body);
  return Json{{"manifest", body}, {"sha256", Sha256Hex(text)}}.dump(
             1, ' ', false, Json::error_handler_t::replace) +
         "\n";
}

Result<Manifest> DecodeManifest(std::string_view bytes, std::string_view key) {
  Json j = Json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("manifest") || !j.contains("sha256")) {
    return Err(Bad(key, "not a Cairn snapshot manifest (damaged or truncated?)"));
  }
  const Json& body = j["manifest"];
  if (!j["sha256"].is_string() || Sha256Hex(Canonical(body)) != j["sha256"].get<std::string>()) {
    return Err(Bad(key, "checksum mismatch: the manifest is damaged"));
  }
  try {
    if (body.at("format").get<std::string>() != kManifestFormat) {
      return Err(Bad(key, "not a Cairn snapshot manifest"));
    }
    Manifest m;
    m.manifest_bytes = bytes.size();
    m.version = body.at("version").get<int>();
    if (m.version != kManifestVersion) {
      return Err(Status(Code::kNotSupported,
                        fmt::format("snapshot manifest {} has version {}; this Cairn reads "
                                    "version {}",
                                    key, m.version, kManifestVersion)));
    }
    m.name = body.at("name").get<std::string>();
    m.fs_uuid = body.at("fs_uuid").get<std::string>();
    m.created = body.at("created").get<int64_t>();
    m.created_nsec = body.at("created_nsec").get<uint32_t>();
    m.pushed = body.at("pushed").get<int64_t>();
    m.inline_max = body.at("inline_max").get<uint64_t>();
    m.segment_size = body.at("segment_size").get<uint64_t>();
    m.files = body.at("files").get<uint64_t>();
    m.file_bytes = body.at("file_bytes").get<uint64_t>();
    for (const auto& f : body.at("metadata")) {
      m.metadata.push_back({f.at("file").get<std::string>(), f.at("key").get<std::string>(),
                            f.at("size").get<uint64_t>(), f.at("sha256").get<std::string>()});
    }
    for (const auto& s : body.at("segments")) {
      m.segments.push_back({s.at("id").get<uint64_t>(), s.at("key").get<std::string>(),
                            s.at("size").get<uint64_t>()});
    }
    for (const auto& k : m.Keys()) {
      if (!tier::CheckKey(k).ok() || k.find("..") != std::string::npos) {
        return Err(Bad(key, "names an unsafe object key"));
      }
    }
    for (const auto& f : m.metadata) {
      if (f.file.empty() || f.file.find('/') != std::string::npos || f.file[0] == '.') {
        return Err(Bad(key, "names an unsafe metadata file"));
      }
    }
    return m;
  } catch (const Json::exception& e) {
    return Err(Bad(key, std::string("malformed: ") + e.what()));
  }
}

std::string EncodeRefs(const Refs& r) {
  return Json{{"format", "cairn-refs"},
              {"version", 1},
              {"fs_uuid", r.fs_uuid},
              {"source", r.source},
              {"keys", r.keys}}
             .dump(1) +
         "\n";
}

Result<Refs> DecodeRefs(std::string_view bytes, std::string_view key) {
  Json j = Json::parse(bytes, nullptr, false);
  try {
    if (j.is_discarded() || j.at("format").get<std::string>() != "cairn-refs") {
      return Err(Bad(key, "not a Cairn references object"));
    }
    Refs r;
    r.fs_uuid = j.at("fs_uuid").get<std::string>();
    r.source = j.at("source").get<std::string>();
    r.keys = j.at("keys").get<std::vector<std::string>>();
    return r;
  } catch (const Json::exception& e) {
    return Err(Bad(key, std::string("malformed: ") + e.what()));
  }
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr);
  return ToHex(md, n);
}

Result<std::string> Sha256File(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(File file, File::Open(path, O_RDONLY));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::string buf(1 << 20, '\0');
  for (uint64_t off = 0;;) {
    CAIRN_ASSIGN_OR_RETURN(size_t got, file.ReadAt(off, buf.data(), buf.size()));
    if (got == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), got);
    off += got;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &n);
  return ToHex(md, n);
}

Result<std::vector<tier::ObjectInfo>> ListAll(tier::ObjectStore& store, const std::string& prefix) {
  std::vector<tier::ObjectInfo> out;
  std::string token;
  do {
    CAIRN_ASSIGN_OR_RETURN(tier::ListPage page, store.List(prefix, "", token));
    for (auto& o : page.objects) out.push_back(std::move(o));
    token = page.next_token;
  } while (!token.empty());
  return out;
}

Result<std::string> GetObject(tier::ObjectStore& store, std::string_view key) {
  CAIRN_ASSIGN_OR_RETURN(tier::ObjectInfo info, store.Head(key));
  if (info.size > (1ull << 30)) return Err(Bad(key, "too large for a manifest"));
  std::string data(info.size, '\0');
  CAIRN_ASSIGN_OR_RETURN(size_t got, store.GetRange(key, 0, data.size(), data.data()));
  if (got != data.size()) return Err(Bad(key, "shorter than announced"));
  return data;
}

Result<Listing> ListSnapshots(tier::ObjectStore& store) {
  Listing out;
  CAIRN_ASSIGN_OR_RETURN(auto objects, ListAll(store, "snapshots/"));
  for (const auto& o : objects) {
    if (!o.key.ends_with(".json")) continue;
    auto data = GetObject(store, o.key);
    if (!data) {
      if (data.error().code() == Code::kNotFound) continue;  // deleted meanwhile
      if (data.error().code() != Code::kCorruption) return Err(data.error());
      out.damaged.emplace_back(o.key, data.error().message());
      continue;
    }
    auto m = DecodeManifest(*data, o.key);
    if (!m) {
      out.damaged.emplace_back(o.key, m.error().message());
      continue;
    }
    out.manifests.push_back(std::move(*m));
  }
  return out;
}

Result<Manifest> FindSnapshot(tier::ObjectStore& store, std::string_view name) {
  std::string_view uuid;
  if (auto at = name.find('@'); at != std::string_view::npos) {
    uuid = name.substr(at + 1);
    name = name.substr(0, at);
  }
  CAIRN_RETURN_IF_ERROR(CheckSnapshotName(name));
  if (uuid.find_first_not_of("0123456789abcdef-") != std::string_view::npos) {
    return Err(Code::kInvalid, "NAME@UUID: not a file system uuid: " + std::string(uuid));
  }
  if (!uuid.empty()) {
    const std::string key = ManifestKey(name, uuid);
    auto data = GetObject(store, key);
    if (!data) {
      if (data.error().code() == Code::kNotFound) {
        return Err(Code::kNotFound, fmt::format("no snapshot '{}' of file system {} in {}", name,
                                                uuid, store.Describe()));
      }
      return Err(data.error());
    }
    return DecodeManifest(*data, key);
  }
  CAIRN_ASSIGN_OR_RETURN(auto objects, ListAll(store, fmt::format("snapshots/{}/", name)));
  std::vector<std::string> keys;
  for (const auto& o : objects) {
    if (o.key.ends_with(".json")) keys.push_back(o.key);
  }
  if (keys.empty()) {
    return Err(Code::kNotFound, fmt::format("no snapshot '{}' in {} (see 'cairn snap list {}')",
                                            name, store.Describe(), store.Describe()));
  }
  if (keys.size() > 1) {
    std::string which;
    for (const auto& k : keys) {
      which += fmt::format(" {}@{}", name, k.substr(k.rfind('/') + 1, 36));
    }
    return Err(
        Code::kInvalid,
        fmt::format("several file systems pushed a snapshot '{}'; name one of:{}", name, which));
  }
  CAIRN_ASSIGN_OR_RETURN(std::string data, GetObject(store, keys[0]));
  return DecodeManifest(data, keys[0]);
}

}  // namespace cairn::snap
