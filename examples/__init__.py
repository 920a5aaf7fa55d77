"""Examples of what users plug into xentcheck (an external adapter: ``numpy_kernel``)."""
