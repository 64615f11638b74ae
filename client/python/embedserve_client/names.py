"""The names the client takes for the server's enums: one table per enum.

The keys are core/enum_names.cc's names (what the server stores on disk and
what embedctl takes); tests/client/python_enum_names_test.py checks every
table here against the C++ tables (printed by enum_names_dump) and each value
against the wire enum's name, so that neither can drift.
"""

from ._proto import embedserve_pb2 as pb

OPTIMIZERS = {
    "sgd": pb.OptimizerSpec.SGD,
    "adagrad": pb.OptimizerSpec.ADAGRAD,
    "rowwise_adagrad": pb.OptimizerSpec.ROWWISE_ADAGRAD,
    "sparse_adam": pb.OptimizerSpec.SPARSE_ADAM,
}
INITS = {
    "normal": pb.Initializer.NORMAL,
    "uniform": pb.Initializer.UNIFORM,
    "zeros": pb.Initializer.ZEROS,
    "constant": pb.Initializer.CONSTANT,
    "xavier_uniform": pb.Initializer.XAVIER_UNIFORM,
}
POOLING_MODES = {"sum": pb.SUM, "mean": pb.MEAN, "max": pb.MAX}
# Row types, and the value types a lookup answer is asked in (the server
# answers float32 or float16 and refuses the others).
ROW_TYPES = {
    "float32": pb.FLOAT32,
    "float16": pb.FLOAT16,
    "bfloat16": pb.BFLOAT16,
    "int8_rowwise": pb.INT8_ROWWISE,
}


def value_type(name):
    """ROW_TYPES[name], in any case; ValueError for a name it does not list."""
    try:
        return ROW_TYPES[name.lower()]
    except KeyError:
        raise ValueError("unknown value type %r: expected one of %s"
                         % (name, ", ".join(ROW_TYPES))) from None
