"""Segmenting videos: propagation, re-identification rounds, drivers for folders and DAVIS."""
