// ONNXGraph
