//! Long-running service building blocks (work in progress).
