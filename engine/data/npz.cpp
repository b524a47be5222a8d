// NumPy's .npz archives: a zip file (PKWARE's APPNOTE) of .npy members, stored or deflated.
// The reader trusts only the central directory for sizes (numpy writes Zip64 local headers
// whose sizes are placeholders) and checks every offset against the file and every member
// against its size and CRC-32.
#include <zlib.h>

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "ember/error.hpp"
#include "engine/data/file_writer.hpp"
#include "engine/data/npy_format.hpp"

namespace ember::data {
namespace detail {
namespace {

// The records of a zip archive: their signatures and the sizes of their fixed parts.
struct RecordKind {
  std::uint32_t signature;
  std::size_t bytes;
};
constexpr RecordKind kLocalHeader{0x04034b50, 30};
constexpr RecordKind kCentralHeader{0x02014b50, 46};
constexpr RecordKind kEnd{0x06054b50, 22};
constexpr RecordKind kZip64End{0x06064b50, 56};
constexpr RecordKind kZip64Locator{0x07064b50, 20};
constexpr std::size_t kMaxCommentBytes = 65535;
constexpr std::uint16_t kZip64ExtraId = 0x0001;
constexpr std::uint16_t kStored = 0, kDeflated = 8;
constexpr std::uint64_t kMax32 = 0xFFFFFFFF;
constexpr std::uint16_t kDosDate1980 = (1 << 5) | 1;  // 1980-01-01: the files do not vary
constexpr std::uint16_t kZipVersion = 20;             // 2.0: deflate

struct Member {
  std::string name;
  std::uint16_t method = 0;
  std::uint32_t crc = 0;
  std::uint64_t compressed_size = 0, size = 0, local_offset = 0;
  std::uint64_t directory_offset = 0;  // of its central header, for messages
};

// Little-endian fields of a record read into memory, with its file offset for messages.
class Record {
 public:
  Record(const File& file, std::uint64_t offset, std::size_t n, std::string_view item)
      : file_(file), offset_(offset), bytes_(n) {
    file.read_exact_at(offset, bytes_.data(), n, item);
  }
  std::uint64_t u(std::size_t at, int n) const { return get_le(bytes_.data() + at, n); }
  const unsigned char* data() const { return bytes_.data(); }
  std::size_t size() const { return bytes_.size(); }
  [[noreturn]] void fail(std::size_t at, const std::string& what) const {
    fail_at(file_.where(), offset_ + at, what);
  }

 private:
  const File& file_;
  std::uint64_t offset_;
  std::vector<unsigned char> bytes_;
};

struct Directory {
  std::uint64_t entries = 0, offset = 0, size = 0;
  std::uint64_t end = 0;  // where the directory must end: the (Zip64) end record
};

Directory find_directory(const File& file) {
  if (file.size() < kEnd.bytes) {
    fail_at(file.where(), 0,
            "not a zip archive: " + std::to_string(file.size()) +
                " bytes, fewer than its end record alone");
  }
  // The end record is the last 22 bytes but for a comment of up to 64 KiB.
  const std::uint64_t tail_at =
      file.size() - std::min<std::uint64_t>(file.size(), kEnd.bytes + kMaxCommentBytes);
  const Record tail(file, tail_at, file.size() - tail_at, "the end record");
  std::optional<std::size_t> found;
  for (std::size_t at = tail.size() - kEnd.bytes + 1; at-- > 0 && !found;) {
    if (tail.u(at, 4) == kEnd.signature && at + kEnd.bytes + tail.u(at + 20, 2) == tail.size())
      found = at;
  }
  if (!found) {
    tail.fail(0, "not a zip archive: no end of central directory record in its last " +
                     std::to_string(tail.size()) + " bytes");
  }
  const std::size_t at = *found;
  if (tail.u(at + 4, 2) != 0 || tail.u(at + 6, 2) != 0 || tail.u(at + 8, 2) != tail.u(at + 10, 2)) {
    tail.fail(at, "archives split over several disks are not supported");
  }
  Directory dir{tail.u(at + 10, 2), tail.u(at + 16, 4), tail.u(at + 12, 4), tail_at + at};
  if (dir.entries != 0xFFFF && dir.offset != kMax32 && dir.size != kMax32) return dir;

  // Zip64: the locator just before the end record points at the Zip64 end record.
  if (dir.end < kZip64Locator.bytes) tail.fail(at, "a Zip64 archive without its locator");
  const Record locator(file, dir.end - kZip64Locator.bytes, kZip64Locator.bytes,
                       "the Zip64 locator");
  if (locator.u(0, 4) != kZip64Locator.signature) locator.fail(0, "the Zip64 locator is missing");
  const std::uint64_t end64_at = locator.u(8, 8);
  if (end64_at > dir.end - kZip64Locator.bytes - kZip64End.bytes ||
      dir.end < kZip64Locator.bytes + kZip64End.bytes) {
    locator.fail(8, "the Zip64 end record's offset " + std::to_string(end64_at) +
                        " lies outside the archive");
  }
  const Record end64(file, end64_at, kZip64End.bytes, "the Zip64 end record");
  if (end64.u(0, 4) != kZip64End.signature) end64.fail(0, "bad signature of the Zip64 end record");
  if (end64.u(16, 4) != 0 || end64.u(20, 4) != 0 || end64.u(24, 8) != end64.u(32, 8)) {
    end64.fail(16, "archives split over several disks are not supported");
  }
  return {end64.u(32, 8), end64.u(48, 8), end64.u(40, 8), end64_at};
}

// The values a Zip64 extra field gives for the header fields that hold 0xFFFFFFFF.
void apply_zip64_extra(const Record& cd, std::size_t extra_at, std::size_t extra_len, Member* m) {
  std::uint64_t* wanted[] = {&m->size, &m->compressed_size, &m->local_offset};
  for (std::size_t p = extra_at; p + 4 <= extra_at + extra_len;) {
    const auto id = cd.u(p, 2);
    const auto len = cd.u(p + 2, 2);
    if (p + 4 + len > extra_at + extra_len) cd.fail(p, "an extra field runs past its entry");
    if (id == kZip64ExtraId) {
      std::size_t q = p + 4;
      for (std::uint64_t* field : wanted) {
        if (*field != kMax32) continue;
        if (q + 8 > p + 4 + len) cd.fail(p, "the Zip64 extra field is too short");
        *field = cd.u(q, 8);
        q += 8;
      }
    }
    p += 4 + len;
  }
  for (const std::uint64_t* field : wanted) {
    if (*field == kMax32) cd.fail(extra_at, "a Zip64 size or offset without its extra field");
  }
}

struct Archive {
  std::vector<Member> members;
  std::uint64_t members_end = 0;  // the members' data lies before this offset
};

Archive read_directory(const File& file) {
  const Directory dir = find_directory(file);
  const auto dir_end = checked_add(dir.offset, dir.size);
  if (!dir_end || *dir_end > dir.end) {
    fail_at(file.where(), dir.end,
            "the central directory (" + std::to_string(dir.size) + " bytes at " +
                std::to_string(dir.offset) + ") runs past its end record");
  }
  if (dir.entries > dir.size / kCentralHeader.bytes) {
    fail_at(file.where(), dir.end,
            std::to_string(dir.entries) + " entries cannot fit a central directory of " +
                std::to_string(dir.size) + " bytes");
  }
  const Record cd(file, dir.offset, static_cast<std::size_t>(dir.size), "the central directory");
  std::vector<Member> members;
  std::set<std::string> names;
  std::size_t p = 0;
  for (std::uint64_t i = 0; i < dir.entries; ++i) {
    if (p + kCentralHeader.bytes > cd.size() || cd.u(p, 4) != kCentralHeader.signature) {
      cd.fail(p, "entry " + std::to_string(i) + " of the central directory is missing or corrupt");
    }
    Member m;
    m.directory_offset = dir.offset + p;
    const auto flags = cd.u(p + 8, 2);
    m.method = static_cast<std::uint16_t>(cd.u(p + 10, 2));
    m.crc = static_cast<std::uint32_t>(cd.u(p + 16, 4));
    m.compressed_size = cd.u(p + 20, 4);
    m.size = cd.u(p + 24, 4);
    m.local_offset = cd.u(p + 42, 4);
    const std::size_t name_len = cd.u(p + 28, 2), extra_len = cd.u(p + 30, 2),
                      comment_len = cd.u(p + 32, 2);
    const std::size_t name_at = p + kCentralHeader.bytes;
    if (name_at + name_len + extra_len + comment_len > cd.size()) {
      cd.fail(p, "entry " + std::to_string(i) + " runs past the central directory");
    }
    m.name.assign(reinterpret_cast<const char*>(cd.data() + name_at), name_len);
    const std::string what = "member '" + m.name + "'";
    if ((flags & 0x41) != 0) cd.fail(p + 8, what + " is encrypted");
    if (m.method != kStored && m.method != kDeflated) {
      cd.fail(p + 10, what + " uses compression method " + std::to_string(m.method) +
                          " (only stored and deflated are supported)");
    }
    if (cd.u(p + 34, 2) != 0 && cd.u(p + 34, 2) != 0xFFFF) {
      cd.fail(p + 34, what + " lies on another disk");
    }
    if (m.size == kMax32 || m.compressed_size == kMax32 || m.local_offset == kMax32) {
      apply_zip64_extra(cd, name_at + name_len, extra_len, &m);
    }
    if (m.name.size() < 4 || m.name.compare(m.name.size() - 4, 4, ".npy") != 0) {
      cd.fail(name_at, what + " is not a .npy file");
    }
    if (!names.insert(m.name).second) cd.fail(name_at, what + " appears twice");
    if (m.method == kStored && m.size != m.compressed_size) {
      cd.fail(p + 20, what + " is stored, yet its sizes differ");
    }
    members.push_back(std::move(m));
    p = name_at + name_len + extra_len + comment_len;
  }
  if (p != cd.size()) {
    cd.fail(p, std::to_string(cd.size() - p) + " bytes follow the last entry of the directory");
  }
  return {std::move(members), dir.offset};
}

// A member's uncompressed bytes: exactly its directory size, checked against its CRC-32 at
// the end. Offsets in messages count from the start of the member.
class MemberSource final : public ByteSource {
 public:
  MemberSource(ByteSource& data, const Member& m, std::string where)
      : ByteSource(std::move(where)), data_(data), member_(m) {}
  std::uint64_t max_remaining() const override { return member_.size - position(); }

 private:
  std::size_t read_raw(void* dst, std::size_t n) override {
    const std::uint64_t left = member_.size - position();
    if (left == 0) {
      finish();
      return 0;
    }
    const std::size_t got =
        data_.read_some(dst, static_cast<std::size_t>(std::min<std::uint64_t>(n, left)));
    if (got == 0) {
      fail("truncated: the member's data ends here, the directory gives it " +
           std::to_string(member_.size) + " bytes");
    }
    crc_ = crc32_z(crc_, static_cast<const Bytef*>(dst), got);
    return got;
  }
  void finish() {
    if (finished_) return;
    finished_ = true;
    unsigned char extra = 0;
    if (data_.read_some(&extra, 1) != 0) {
      fail("the member's data is longer than the " + std::to_string(member_.size) +
           " bytes the directory gives it");
    }
    if (crc_ != member_.crc) fail("CRC-32 mismatch: the member's data is corrupt");
  }

  ByteSource& data_;
  const Member& member_;
  uLong crc_ = crc32_z(0, nullptr, 0);
  bool finished_ = false;
};

Tensor read_member(const File& file, const Member& m, std::uint64_t members_end,
                   const NpyReadOptions& options) {
  const std::string where = file.where() + ", member '" + m.name + "'";
  const auto header_end = checked_add(m.local_offset, kLocalHeader.bytes);
  if (!header_end || *header_end > members_end) {
    fail_at(file.where(), m.directory_offset,
            "member '" + m.name + "': its local header offset " + std::to_string(m.local_offset) +
                " lies outside the members' area");
  }
  const Record local(file, m.local_offset, kLocalHeader.bytes, "a local header");
  if (local.u(0, 4) != kLocalHeader.signature) {
    local.fail(0, "member '" + m.name + "': no local header at the directory's offset");
  }
  if (local.u(8, 2) != m.method) {
    local.fail(8, "member '" + m.name + "': the local and central compression methods differ");
  }
  const std::uint64_t name_len = local.u(26, 2), extra_len = local.u(28, 2);
  const Record local_name(file, *header_end, name_len, "a member name");
  if (std::string(reinterpret_cast<const char*>(local_name.data()), name_len) != m.name) {
    local_name.fail(0, "member '" + m.name + "': the local header names another file");
  }
  const std::uint64_t data_at = *header_end + name_len + extra_len;
  const auto data_end = checked_add(data_at, m.compressed_size);
  if (!data_end || *data_end > members_end) {
    fail_at(file.where(), data_at,
            "member '" + m.name + "': its " + std::to_string(m.compressed_size) +
                " bytes of data run past the members' area (truncated archive?)");
  }
  FileRangeSource stored(file, data_at, *data_end, where + " (compressed data)");
  if (m.method == kStored) {
    MemberSource member(stored, m, where);
    return read_npy_from(member, options);
  }
  InflateSource inflated(stored, InflateSource::Format::RawDeflate, where);
  MemberSource member(inflated, m, where);
  return read_npy_from(member, options);
}

// The fields that a member's local header and its directory entry share, from "version
// needed" to the extra field's length (none: the writer makes no Zip64 records).
void put_common_fields(std::vector<unsigned char>& bytes, const Member& m) {
  put_le<2>(bytes, kZipVersion);  // needed to extract
  put_le<2>(bytes, 0);            // flags
  put_le<2>(bytes, m.method);
  put_le<2>(bytes, 0);  // time
  put_le<2>(bytes, kDosDate1980);
  put_le<4>(bytes, m.crc);
  put_le<4>(bytes, m.compressed_size);
  put_le<4>(bytes, m.size);
  put_le<2>(bytes, m.name.size());
  put_le<2>(bytes, 0);  // extra field length
}

}  // namespace
}  // namespace detail

std::map<std::string, Tensor> read_npz(const std::string& path, const NpyReadOptions& options) {
  const detail::File file(path, "NPZ file");
  const detail::Archive archive = detail::read_directory(file);
  std::map<std::string, Tensor> out;
  for (const detail::Member& m : archive.members) {
    out.emplace(m.name.substr(0, m.name.size() - 4),
                detail::read_member(file, m, archive.members_end, options));
  }
  return out;
}

void write_npz(const std::string& path, const std::map<std::string, Tensor>& tensors,
               const NpzWriteOptions& options) {
  using detail::put_le;
  const std::string where = "NPZ file '" + path + "'";
  auto check_fits = [&](std::uint64_t value, const std::string& what) {
    if (value >= detail::kMax32) {
      throw IoError(where + ": " + what +
                    " reaches 4 GiB, which needs Zip64 records that this writer does not make; "
                    "write the tensors with write_npy instead");
    }
  };
  detail::AtomicFileWriter out(path, where);
  std::vector<detail::Member> members;
  std::vector<unsigned char> bytes;
  for (const auto& [key, tensor] : tensors) {
    detail::Member m;
    m.name = key + ".npy";
    m.method = options.compress ? detail::kDeflated : detail::kStored;
    m.local_offset = out.position();
    const std::string header = detail::npy_header(tensor, options.fortran_order);
    const Tensor payload = detail::npy_payload(tensor, options.fortran_order);
    const auto* data = static_cast<const unsigned char*>(payload.data_ptr());
    const std::size_t data_bytes =
        static_cast<std::size_t>(payload.numel()) * element_size(payload.dtype());
    m.size = header.size() + data_bytes;
    m.crc = static_cast<std::uint32_t>(
        crc32_z(crc32_z(0, reinterpret_cast<const Bytef*>(header.data()), header.size()), data,
                data_bytes));
    std::vector<unsigned char> compressed;
    if (options.compress) {
      detail::Deflater deflater(compressed);
      deflater.add(header.data(), header.size());
      deflater.add(data, data_bytes);
      deflater.finish();
    }
    m.compressed_size = options.compress ? compressed.size() : m.size;
    check_fits(m.size, "member '" + m.name + "'");
    check_fits(m.compressed_size, "member '" + m.name + "'");
    check_fits(m.local_offset, "the archive");
    bytes.clear();
    put_le<4>(bytes, detail::kLocalHeader.signature);
    detail::put_common_fields(bytes, m);
    out.write(bytes.data(), bytes.size());
    out.write(m.name.data(), m.name.size());
    if (options.compress) {
      out.write(compressed.data(), compressed.size());
    } else {
      out.write(header.data(), header.size());
      out.write(data, data_bytes);
    }
    members.push_back(std::move(m));
  }
  const std::uint64_t directory_offset = out.position();
  check_fits(directory_offset, "the archive");
  for (const detail::Member& m : members) {
    bytes.clear();
    put_le<4>(bytes, detail::kCentralHeader.signature);
    put_le<2>(bytes, detail::kZipVersion);  // made by (MS-DOS attributes)
    detail::put_common_fields(bytes, m);
    put_le<2>(bytes, 0);  // comment length
    put_le<2>(bytes, 0);  // disk
    put_le<2>(bytes, 0);  // internal attributes
    put_le<4>(bytes, 0);  // external attributes
    put_le<4>(bytes, m.local_offset);
    out.write(bytes.data(), bytes.size());
    out.write(m.name.data(), m.name.size());
  }
  const std::uint64_t directory_size = out.position() - directory_offset;
  check_fits(out.position(), "the archive");
  if (members.size() >= 0xFFFF) {
    throw IoError(where + ": " + std::to_string(members.size()) +
                  " members need Zip64 records, which this writer does not make");
  }
  bytes.clear();
  put_le<4>(bytes, detail::kEnd.signature);
  put_le<2>(bytes, 0);  // this disk
  put_le<2>(bytes, 0);  // the directory's disk
  put_le<2>(bytes, members.size());
  put_le<2>(bytes, members.size());
  put_le<4>(bytes, directory_size);
  put_le<4>(bytes, directory_offset);
  put_le<2>(bytes, 0);  // comment length
  out.write(bytes.data(), bytes.size());
  out.commit();
}

}  // namespace ember::data
