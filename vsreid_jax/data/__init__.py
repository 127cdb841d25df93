"""Reading and writing videos, masks and DAVIS datasets; synthetic videos."""
