//! (stage `fail2ban`: being written)
