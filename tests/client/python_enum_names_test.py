"""The Python client's enum names are the C++ ones.

embedserve_client/names.py keeps one table per enum; the C++ tables live in
core/enum_names.cc and enum_names_dump prints them. This test compares the
two, table by table and in order, and checks that each Python value is the
wire enum value of the same (upper-cased) name, so a name added, renamed or
dropped on either side fails here.

    PYTHONPATH=build/python python_enum_names_test.py --dump build/tests/enum_names_dump
"""

import argparse
import collections
import subprocess
import sys
import unittest

from embedserve_client import names
from embedserve_client._proto import embedserve_pb2 as pb

ARGS = None


def cpp_tables():
    out = subprocess.run([ARGS.dump], check=True, capture_output=True, text=True).stdout
    tables = collections.defaultdict(list)
    for line in out.splitlines():
        enum, name = line.split(" ")
        tables[enum].append(name)
    return tables


class PythonEnumNamesTest(unittest.TestCase):
    def setUp(self):
        self.cpp = cpp_tables()

    def check(self, cpp_enum, table, wire_enum):
        self.assertEqual(list(table), self.cpp[cpp_enum], cpp_enum)
        for name, value in table.items():
            self.assertEqual(wire_enum.Name(value), name.upper(), name)

    def test_the_dump_lists_every_table(self):
        self.assertEqual(sorted(self.cpp),
                         ["init", "optimizer", "pooling_mode", "row_type", "simd_level"])

    def test_optimizers(self):
        self.check("optimizer", names.OPTIMIZERS, pb.OptimizerSpec.Kind)

    def test_initializers(self):
        self.check("init", names.INITS, pb.Initializer.Kind)

    def test_pooling_modes(self):
        self.check("pooling_mode", names.POOLING_MODES, pb.PoolingMode)

    def test_row_types(self):
        self.check("row_type", names.ROW_TYPES, pb.ValueType)

    def test_value_type_takes_any_case_and_refuses_unknown_names(self):
        self.assertEqual(names.value_type("FLOAT16"), pb.FLOAT16)
        with self.assertRaises(ValueError):
            names.value_type("float64")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--dump", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest)
