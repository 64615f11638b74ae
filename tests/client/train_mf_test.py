"""The README's training example runs end to end against a real server: the
loss falls and the held-out hit-rate@10 beats random by a wide margin."""

import re
import subprocess
import sys
import unittest

EXAMPLE, SERVER = sys.argv[1], sys.argv[2]


class TrainMfExample(unittest.TestCase):

    def test_loss_falls_and_hit_rate_beats_random(self):
        out = subprocess.run(["/usr/bin/python3", EXAMPLE, "--server", SERVER],
                             capture_output=True, text=True, timeout=240)
        self.assertEqual(out.returncode, 0, out.stderr)
        losses = [float(x) for x in re.findall(r"BPR loss ([0-9.]+)", out.stdout)]
        self.assertEqual(len(losses), 8, out.stdout)
        self.assertLess(losses[-1], 0.6 * losses[0], out.stdout)
        hr, random = map(float, re.search(
            r"after training: ([0-9.]+) \(random: ([0-9.]+)\)", out.stdout).groups())
        self.assertGreater(hr, 5 * random, out.stdout)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
