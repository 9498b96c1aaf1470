//! (stage `detect`: being written)
