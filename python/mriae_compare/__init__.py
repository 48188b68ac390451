"""Checks a framework's implementation of mriae's autoencoder against an `mriae trace` file.

    python3 -m mriae_compare TRACE.safetensors [--framework torch|jax|keras] [--plant MISTAKE]

Each step starts from the trace's state before it (parameters, RMSprop accumulators, moving statistics), runs
in the framework in the trace's dtype, and every tensor is compared in execution order (comparison.py).
"""
