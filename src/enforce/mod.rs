//! (stage `enforce`: being written)
