// featx/detail/stb_jpeg_check.hpp: JPEG marker structures stb_image must not
// see, refused before it does (decode_stb in featx/image/decode.hpp).
//
// stb_image 2.27 (Debian 12's libstb-dev, git 2022-09-08) trusts what a
// hostile JPEG says about its Huffman tables; libFuzzer
// (fuzz/fuzz_image_stb.cpp) found two ways in, both fixed upstream in 2.28:
//
//   * DHT: the 16 code counts of a table are summed without a bound, and
//     stbi__build_huffman writes one size per code into size[257] (the DHT
//     loop one value per code into values[256]): two counts of 255 overflow
//     the table inside the heap-allocated decoder, even in stbi_info. A valid
//     table has at most 256 codes (ITU-T T.81, B.2.4.2).
//   * A scan that uses a Huffman table the file never defined: stb mallocs
//     its decoder without clearing it, so the table's maxcode, delta and
//     fast-lookup entries are whatever the heap held, and
//     stbi__jpeg_huff_decode indexes size[], code[] and values[] with a
//     symbol id computed from them: an out-of-bounds read (the SEGV of a
//     ~460-byte progressive JPEG whose AC scans name an undefined table; with
//     assertions on, the STBI_ASSERT in stbi__jpeg_huff_decode fires).
//
// Undefined quantization tables and components that no scan starts
// (progressive: no first DC scan, which is what clears a block's
// coefficients) read the same uninitialised memory without going out of
// bounds: heap contents would become pixels. They are refused too. T.81
// requires every table to be defined before the scan that uses it, and every
// component's first DC scan before its AC scans (G.1.1.1.1), so no valid
// JPEG is refused: tests/test_image.cpp decodes the shared photos and every
// cjpeg variant of fuzz/make_corpus.py through this check.
//
// The walk reads the file as stb does: bytes past the end read as 0, a
// marker is 0xFF and its fill bytes, a stray byte between markers is
// skipped, a marker segment ends where its length says (stb either consumes
// exactly that or fails), and entropy-coded data runs to the next 0xFF that
// is neither stuffing (0xFF00) nor a restart marker. So every table and scan
// stb could act on is seen, in stb's order. Where stb fails with its own
// error the walk stops and leaves the refusal to stb.
#pragma once

#include <cstddef>
#include <cstdint>

namespace featx {
namespace detail {

class StbJpegWalk {
 public:
  StbJpegWalk(const uint8_t* data, size_t size) : d_(data), n_(size) {}

  // nullptr when stb may decode the file, else why not (a phrase, one line).
  const char* refusal() {
    if (marker() != 0xD8) return nullptr;  // no SOI (fill bytes before it are fine): stb says so itself
    while (at_ < n_) {
      const int m = marker();
      if (m < 0) continue;  // a stray byte, skipped
      if (m == 0xD9) return frame_ ? finished() : nullptr;  // EOI
      if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length
      const size_t start = at_;
      const int length = get16();
      if (length < 2) return nullptr;  // stb fails: bad length
      const size_t end = start + size_t(length);
      bool go_on = true, parsed = true;  // parsed: stb reads the segment to its end
      const char* why = nullptr;
      if (m == 0xC4) {
        why = dht(end, &go_on);
      } else if (m == 0xDB) {
        go_on = dqt(end);
      } else if (m == 0xC0 || m == 0xC1 || m == 0xC2) {
        go_on = !frame_ && sof(m == 0xC2);
      } else if (m >= 0xC3 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
        return nullptr;  // a frame type stb does not decode: it fails
      } else if (m == 0xDA) {
        why = sos(&go_on);
      } else {
        parsed = false;  // skipped by its length (APPn, COM, DRI, DNL) or refused by stb
      }
      if (why) return why;
      if (!go_on || (parsed && at_ != end)) return nullptr;  // stb fails on it
      at_ = end;
      if (m == 0xDA) skip_entropy_coded_data();
    }
    return nullptr;  // no EOI: stb fails
  }

  // True when the file is 0xFF fill bytes, then SOI (FF FF D8): stb reads
  // that as a JPEG, libjpeg and TF's decode_image do not.
  bool fill_bytes_before_soi() {
    if (n_ < 3 || d_[0] != 0xFF || d_[1] != 0xFF) return false;
    return marker() == 0xD8;
  }

 private:
  struct Component {
    int id = 0, tq = 0;
    bool started = false;  // decoded by a baseline scan, or a progressive first DC scan
  };

  int get8() { return at_ < n_ ? d_[at_++] : (at_++, 0); }
  int get16() {
    const int hi = get8();
    return hi << 8 | get8();
  }

  // The marker at the cursor (stbi__get_marker), -1 for a byte that is not 0xFF.
  int marker() {
    int x = get8();
    if (x != 0xFF) return -1;
    while (x == 0xFF) x = get8();
    return x;
  }

  // stb's DHT loop (stbi__process_marker, case 0xC4) on one segment.
  const char* dht(size_t end, bool* go_on) {
    while (at_ < end) {
      const int q = get8();
      const int tc = q >> 4, th = q & 15;
      if (tc > 1 || th > 3) return *go_on = false, nullptr;  // stb fails: bad DHT header
      int codes = 0;
      for (int i = 0; i < 16; ++i) codes += get8();
      if (codes > 256) return "a Huffman table (DHT) with more than 256 codes";
      at_ += size_t(codes);
      (tc == 0 ? dc_ : ac_)[th] = true;
    }
    *go_on = at_ == end;
    return nullptr;
  }

  // stb's DQT loop: 64 one- or two-byte entries per table.
  bool dqt(size_t end) {
    while (at_ < end) {
      const int q = get8();
      const int p = q >> 4, t = q & 15;
      if (p > 1 || t > 3) return false;
      at_ += p ? 128 : 64;
      dq_[t] = true;
    }
    return at_ == end;
  }

  // stbi__process_frame_header: the components and their quantization tables.
  bool sof(bool progressive) {
    at_ += 5;  // precision, height, width: stb checks them itself
    const int count = get8();
    if (count != 1 && count != 3 && count != 4) return false;
    components_ = count;
    for (int i = 0; i < count; ++i) {
      comp_[i].id = get8();
      at_ += 1;  // sampling factors
      comp_[i].tq = get8();
      if (comp_[i].tq > 3) return false;
    }
    frame_ = true;
    progressive_ = progressive;
    return true;
  }

  // stbi__process_scan_header, then what the scan's decoding will read.
  const char* sos(bool* go_on) {
    *go_on = false;
    if (!frame_) return nullptr;  // stb fails: SOS before SOF
    const int count = get8();
    if (count < 1 || count > 4 || count > components_) return nullptr;
    int which[4], hd[4], ha[4];
    for (int i = 0; i < count; ++i) {
      const int id = get8(), q = get8();
      which[i] = 0;
      while (which[i] < components_ && comp_[which[i]].id != id) ++which[i];
      if (which[i] == components_) return nullptr;
      hd[i] = q >> 4;
      ha[i] = q & 15;
      if (hd[i] > 3 || ha[i] > 3) return nullptr;
    }
    const int spec_start = get8(), spec_end = get8(), a = get8();
    const int succ_high = a >> 4, succ_low = a & 15;
    if (progressive_ ? (spec_start > 63 || spec_end > 63 || spec_start > spec_end || succ_high > 13 || succ_low > 13)
                     : (spec_start != 0 || a != 0))
      return nullptr;
    const bool dc_first = spec_start == 0 && succ_high == 0;
    for (int i = 0; i < count; ++i) {
      Component& c = comp_[which[i]];
      const bool uses_dc = !progressive_ || dc_first, uses_ac = !progressive_ || spec_start != 0;
      if ((uses_dc && !dc_[hd[i]]) || (uses_ac && !ac_[ha[i]]))
        return "a scan uses a Huffman table the file does not define";
      if (!dq_[c.tq]) return "a scan uses a quantization table the file does not define";
      if (!progressive_ || dc_first) c.started = true;
    }
    *go_on = true;
    return nullptr;
  }

  // At EOI: every component's samples were decoded (stb outputs them all).
  const char* finished() const {
    for (int i = 0; i < components_; ++i)
      if (!comp_[i].started)
        return progressive_ ? "a component without a first DC scan" : "a component that no scan decodes";
    return nullptr;
  }

  // To the next marker: 0xFF 0x00 is a stuffed 0xFF, 0xFF 0xD0..0xD7 a
  // restart marker inside the scan.
  void skip_entropy_coded_data() {
    while (at_ < n_) {
      if (d_[at_] != 0xFF) {
        ++at_;
        continue;
      }
      size_t next = at_ + 1;
      while (next < n_ && d_[next] == 0xFF) ++next;
      if (next < n_ && (d_[next] == 0x00 || (d_[next] >= 0xD0 && d_[next] <= 0xD7))) {
        at_ = next + 1;
        continue;
      }
      return;  // the marker, read by the caller
    }
  }

  const uint8_t* d_;
  size_t n_;
  size_t at_ = 0;
  bool dc_[4] = {}, ac_[4] = {}, dq_[4] = {};
  bool frame_ = false, progressive_ = false;
  int components_ = 0;
  Component comp_[4];
};

// nullptr when stb_image may be given these bytes, else why it must not.
inline const char* stb_jpeg_refusal(const uint8_t* data, size_t size) {
  return StbJpegWalk(data, size).refusal();
}

inline bool stb_jpeg_fill_bytes_before_soi(const uint8_t* data, size_t size) {
  return StbJpegWalk(data, size).fill_bytes_before_soi();
}

}  // namespace detail
}  // namespace featx
