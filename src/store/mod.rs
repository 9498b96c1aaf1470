//! (stage `store`: being written)
