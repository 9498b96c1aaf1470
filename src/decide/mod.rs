//! (stage `decide`: being written)
