"""OpenCL C kernel sources (one family per .cl file), shipped as package data of cnnc."""
