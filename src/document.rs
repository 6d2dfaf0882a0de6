//! Document model (being written).
