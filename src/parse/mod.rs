//! (stage `parse`: being written)
