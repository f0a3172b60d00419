@_exported import Explain
@_exported import Imaging
@_exported import ONNXGraph
@_exported import TensorCore
