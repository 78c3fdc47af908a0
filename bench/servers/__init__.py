"""The trivial-tool servers the benchmarks drive: ours and the official SDK's, same tools."""
