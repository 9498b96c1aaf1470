//! (stage `source`: being written)
