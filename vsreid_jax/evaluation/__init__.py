"""The official DAVIS 2017 semi-supervised evaluation (J and F)."""
