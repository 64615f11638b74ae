"""The generated gRPC stubs, embedserve_pb2 and embedserve_pb2_grpc.

They are not in the source tree: `pip install client/python` generates them
into the installed package (setup.py), and the CMake build into its copy of
the package in build/python (client/python/CMakeLists.txt). Messages the
client returns (TableInfo, PushResponse, ...) are of these types.
"""
