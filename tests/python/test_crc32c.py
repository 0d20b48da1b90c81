import os
import unittest

import support  # noqa: F401  (import path)
from featx_export import crc32c as C


class Crc32cTest(unittest.TestCase):
    def test_check_value(self):
        self.assertEqual(C.crc32c(b"123456789"), 0xE3069283)
        self.assertEqual(C.crc32c_bytewise(b"123456789"), 0xE3069283)

    def test_known_vectors(self):
        # RFC 3720 (iSCSI) B.4 test patterns.
        self.assertEqual(C.crc32c(bytes(32)), 0x8A9136AA)
        self.assertEqual(C.crc32c(b"\xff" * 32), 0x62A8AB43)
        self.assertEqual(C.crc32c(bytes(range(32))), 0x46DD794E)
        self.assertEqual(C.crc32c(b""), 0)

    def test_parallel_path_matches_bytewise(self):
        # Sizes around the lane size and the parallel threshold, plus odd tails.
        for n in (C._PARALLEL_MIN - 1, C._PARALLEL_MIN, C._PARALLEL_MIN + 1,
                  C._PARALLEL_MIN + 4095, 20 * 4096 + 17):
            data = os.urandom(n)
            self.assertEqual(C.crc32c(data), C.crc32c_bytewise(data), n)

    def test_accepts_buffers(self):
        data = os.urandom(70000)
        self.assertEqual(C.crc32c(bytearray(data)), C.crc32c(memoryview(data)))

    def test_mask_round_trip(self):
        for v in (0, 1, 0xE3069283, 0xFFFFFFFF):
            self.assertEqual(C.unmask(C.mask(v)), v)


if __name__ == "__main__":
    unittest.main()
