"""Optical flow: .flo files, OpenCV DIS flow, warping by flow."""
