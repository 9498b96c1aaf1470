//! nf_tables set elements over netlink: what `ban`, `unban` and `list` use instead of `nft`.
//!
//! In: a table (family, name), a set name and elements (addresses as big-endian bytes, with an
//! optional timeout). Out: the elements in the kernel, written in one nfnetlink batch (one
//! transaction: all or nothing), or a listing dumped straight from the kernel.
//!
//! Why not `nft`: nft 1.0.6 loads its whole cache, elements included, before every command, so
//! a single `nft add element` into a set of 100 000 takes about 2 s, and listing it as JSON 3 s.
//! Over netlink a write is one `sendmsg` and its acknowledgements, whatever the set's size.
//!
//! The messages are the kernel's own (`include/uapi/linux/netfilter/nf_tables.h`,
//! `nfnetlink.h`; `net/netfilter/nf_tables_api.c` is what parses them):
//! - a batch is `NFNL_MSG_BATCH_BEGIN` (`res_id` = `NFNL_SUBSYS_NFTABLES`), the messages, and
//!   `NFNL_MSG_BATCH_END`; the kernel commits it only when every message succeeded;
//! - `NFT_MSG_NEWSETELEM` / `NFT_MSG_DELSETELEM` carry `NFTA_SET_ELEM_LIST_TABLE`, `_SET` and
//!   `_ELEMENTS` (a nest of `NFTA_LIST_ELEM`, each with `NFTA_SET_ELEM_KEY` → `NFTA_DATA_VALUE`,
//!   and `NFTA_SET_ELEM_TIMEOUT` in milliseconds, or `NFTA_SET_ELEM_FLAGS` =
//!   `NFT_SET_ELEM_INTERVAL_END` for the end of an interval);
//! - an interval set (rbtree) holds `[a, b]` as a start element `a` and an end element `b + 1`
//!   flagged `INTERVAL_END`; an interval reaching the top of the address space has no end;
//! - an attribute's length is 16 bits, so a message carries at most [`CHUNK`] elements and a
//!   large write is many messages in the same batch.
//!
//! The socket comes from `netlink-sys` (MIT); the message layout is written here (a few
//! hundred lines, tested below and end to end): the Rust crates that model nf_tables either
//! bind libnftnl (C, GPL) or are GPL themselves (`rustables`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use ipnet::IpNet;
use jiff::SignedDuration;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use super::SetElement;
use crate::config::NftFamily;

// nfnetlink.h / netlink.h
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
/// Set on a dump's messages when the ruleset changed while it was dumped.
const NLM_F_DUMP_INTR: u16 = 0x10;
/// Dumps tried before a set that keeps changing under them is reported as an error.
const DUMP_ATTEMPTS: usize = 8;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
// nf_tables.h
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: u16 = 1;
/// Delete, absent or not (Linux 6.3+; older kernels refuse the message type with EINVAL).
const NFT_MSG_DESTROYSETELEM: u16 = 30;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_USERDATA: u16 = 7;
/// libnftnl's rule user data: TLVs of a type byte and a length byte; type 0 is the comment.
const NFTNL_UDATA_RULE_COMMENT: u8 = 0;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_SET_INTERVAL: u32 = 0x4;
const NFT_SET_TIMEOUT: u32 = 0x10;
const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;
// netfilter.h
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// Elements per message: each takes at most 40 bytes (an IPv6 key, a timeout), and the
/// `_ELEMENTS` nest's length is 16 bits.
pub const CHUNK: usize = 1_500;
/// How long to wait for the kernel's answer before giving up (never hang a cron pass).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// One element to write: a key (4 or 16 bytes, network order), an optional timeout and
/// whether it ends an interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elem {
    pub key: Vec<u8>,
    pub timeout_ms: Option<u64>,
    pub interval_end: bool,
}

impl Elem {
    fn key(addr: IpAddr) -> Vec<u8> {
        match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    /// The element for one address (a hash set's element, or an interval's start).
    pub fn addr(addr: IpAddr, timeout_ms: Option<u64>) -> Elem {
        Elem {
            key: Elem::key(addr),
            timeout_ms,
            interval_end: false,
        }
    }

    /// The elements of `net` in a set of the given kind: the address for a hash set; for an
    /// interval set a start and, unless the prefix reaches the top of the address space, an
    /// end (the address after its last one).
    pub fn for_net(net: &IpNet, interval: bool, timeout_ms: Option<u64>) -> Vec<Elem> {
        let net = net.trunc();
        let mut out = vec![Elem::addr(net.network(), timeout_ms)];
        if interval && let Some(end) = next_addr(net.broadcast()) {
            out.push(Elem {
                key: Elem::key(end),
                timeout_ms: None,
                interval_end: true,
            });
        }
        out
    }
}

/// The address after `a`, `None` at the top of the address space.
fn next_addr(a: IpAddr) -> Option<IpAddr> {
    match a {
        IpAddr::V4(a) => u32::from(a)
            .checked_add(1)
            .map(|n| Ipv4Addr::from(n).into()),
        IpAddr::V6(a) => u128::from(a)
            .checked_add(1)
            .map(|n| Ipv6Addr::from(n).into()),
    }
}

/// One change within a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `NEWSETELEM` (an element already present is left as it is).
    Add { set: String, elems: Vec<Elem> },
    /// `DELSETELEM` (an absent element fails the whole batch with ENOENT).
    Delete { set: String, elems: Vec<Elem> },
    /// `DELSETELEM` without elements: empty the set.
    Flush { set: String },
    /// `DESTROYSETELEM`: delete, absent elements being no error (Linux 6.3+).
    Destroy { set: String, elems: Vec<Elem> },
}

/// The description [`NfSocket::apply`] gives a refused `Op::Destroy` (how a caller tells an
/// older kernel that lacks it).
pub const DESTROY_WHAT: &str = "destroy element in set";

/// What the kernel says about a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetInfo {
    pub interval: bool,
    pub timeout: bool,
    pub key_len: u32,
    /// nft's data type of the key: [`KEY_IPV4_ADDR`], [`KEY_IPV6_ADDR`], ...
    pub key_type: u32,
}

/// nft's data type numbers (`include/datatype.h`) of the keys portwarden's sets hold.
pub const KEY_IPV4_ADDR: u32 = 7;
pub const KEY_IPV6_ADDR: u32 = 8;

/// A set of a table as a dump lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDesc {
    pub name: String,
    pub info: SetInfo,
}

/// A chain of a table: its name and, for a base chain, its hook number and priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainDesc {
    pub name: String,
    pub hook: Option<(u32, i32)>,
}

/// A rule of a table: its chain and its comment, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDesc {
    pub chain: String,
    pub comment: Option<String>,
}

/// The objects of one table, without set elements: what `check` compares with what `setup`
/// makes, at a cost that does not grow with the sets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableDesc {
    pub sets: Vec<SetDesc>,
    pub chains: Vec<ChainDesc>,
    pub rules: Vec<RuleDesc>,
}

/// One element as dumped: its key, flags and the time left.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dumped {
    key: Vec<u8>,
    interval_end: bool,
    expires_ms: Option<u64>,
}

/// A netlink error: the operation, and the errno the kernel answered.
#[derive(Debug, thiserror::Error)]
#[error("netlink {what}: {source}")]
pub struct NlError {
    pub what: String,
    #[source]
    pub source: io::Error,
}

impl NlError {
    fn new(what: impl Into<String>, source: io::Error) -> NlError {
        NlError {
            what: what.into(),
            source,
        }
    }

    /// The kernel's errno, if it was one.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

/// A `NETLINK_NETFILTER` socket, in this process's network namespace or in a named one.
pub struct NfSocket {
    sock: Socket,
    seq: u32,
    /// Receive buffer (one datagram at a time; the kernel's dump datagrams are under 64 KiB).
    buf: Vec<u8>,
    /// Whether the last [`NfSocket::receive`] saw `NLM_F_DUMP_INTR`: what it dumped may have
    /// missed or repeated objects.
    dump_interrupted: bool,
}

impl std::fmt::Debug for NfSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfSocket").field("seq", &self.seq).finish()
    }
}

impl NfSocket {
    /// Opens the socket; inside network namespace `netns` (`/run/netns/NAME`, as `ip netns`
    /// makes them) when given: a helper thread enters it and opens the socket there, and the
    /// socket keeps talking to that namespace's nf_tables.
    pub fn open(netns: Option<&str>) -> Result<NfSocket, NlError> {
        let sock = match netns {
            None => Self::socket(),
            Some(name) => {
                let path = format!("/run/netns/{name}");
                let ns = std::fs::File::open(&path)
                    .map_err(|e| NlError::new(format!("open {path}"), e))?;
                std::thread::scope(|s| {
                    s.spawn(|| {
                        // SAFETY: setns on a valid descriptor, affecting only this thread,
                        // which ends right after opening the socket.
                        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                            return Err(NlError::new(
                                format!("enter {path}"),
                                io::Error::last_os_error(),
                            ));
                        }
                        Self::socket()
                    })
                    .join()
                    .unwrap_or_else(|_| {
                        Err(NlError::new(
                            "open socket",
                            io::Error::other("thread panicked"),
                        ))
                    })
                })
            }
        }?;
        Ok(NfSocket {
            sock,
            seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as u32)
                .unwrap_or(1),
            buf: vec![0; 64 * 1024],
            dump_interrupted: false,
        })
    }

    fn socket() -> Result<Socket, NlError> {
        let err = |what: &str| {
            let what = what.to_string();
            move |e: io::Error| NlError::new(what.clone(), e)
        };
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(err("socket"))?;
        sock.bind_auto().map_err(err("bind"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(err("connect"))?;
        let tv = libc::timeval {
            tv_sec: REPLY_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a correctly sized timeval / int.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            // Room for large dumps and batches (force needs CAP_NET_ADMIN, which a write
            // needs anyway; without it the defaults stay).
            let size: libc::c_int = 16 << 20;
            for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok(sock)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// A request (not a batch) of nf_tables message `msg`, its string attributes (the table,
    /// the set: `(attribute, value)`) and one element key if given, sent; returns `what`, the
    /// name its errors will carry.
    fn request(
        &mut self,
        msg: u16,
        flags: u16,
        family: NftFamily,
        strings: &[(u16, &str)],
        elem: Option<&Elem>,
        what: String,
    ) -> Result<String, NlError> {
        let seq = self.next_seq();
        let mut m = Msg::new(
            nft_type(msg),
            NLM_F_REQUEST | flags,
            seq,
            nfproto(family),
            0,
        );
        for (attr, value) in strings {
            m.put_str(*attr, value);
        }
        if let Some(e) = elem {
            let nest = m.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
            m.put_elem(e);
            m.end_nest(nest);
        }
        self.send(&m.finish(), &what)?;
        Ok(what)
    }

    /// The set's flags and key length; `None` when the table or the set does not exist.
    pub fn set_info(
        &mut self,
        family: NftFamily,
        table: &str,
        set: &str,
    ) -> Result<Option<SetInfo>, NlError> {
        let what = self.request(
            NFT_MSG_GETSET,
            NLM_F_ACK,
            family,
            &[(NFTA_SET_TABLE, table), (NFTA_SET_NAME, set)],
            None,
            format!("get set {table} {set}"),
        )?;
        let mut info = None;
        let res = self.receive(&what, |msg_type, payload| {
            // The answer to GETSET is a NEWSET message.
            if msg_type != nft_type(NFT_MSG_NEWSET) {
                return;
            }
            info = parse_set(payload).map(|d| d.info);
        });
        match res {
            Ok(()) => Ok(info),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The table's sets, chains and rules (no elements); `None` when there is no such table.
    pub fn describe(
        &mut self,
        family: NftFamily,
        table: &str,
    ) -> Result<Option<TableDesc>, NlError> {
        // The table itself: ENOENT when it is absent.
        let what = self.request(
            NFT_MSG_GETTABLE,
            NLM_F_ACK,
            family,
            &[(NFTA_TABLE_NAME, table)],
            None,
            format!("get table {table}"),
        )?;
        match self.receive(&what, |_, _| {}) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut desc = TableDesc::default();
        // Each dump asks for this table's objects; the answers are filtered again here.
        for (get, table_attr, new, what) in [
            (NFT_MSG_GETSET, NFTA_SET_TABLE, NFT_MSG_NEWSET, "sets"),
            (
                NFT_MSG_GETCHAIN,
                NFTA_CHAIN_TABLE,
                NFT_MSG_NEWCHAIN,
                "chains",
            ),
            (NFT_MSG_GETRULE, NFTA_RULE_TABLE, NFT_MSG_NEWRULE, "rules"),
        ] {
            let (sets, chains, rules) = self.dump(
                get,
                family,
                &[(table_attr, table)],
                &format!("list {what} of {table}"),
                |(sets, chains, rules): &mut (Vec<SetDesc>, Vec<ChainDesc>, Vec<RuleDesc>),
                 ty,
                 payload| {
                    let ours = attrs(payload.get(4..).unwrap_or_default())
                        .any(|(t, v)| t == table_attr && cstr(v) == table);
                    if ty != nft_type(new) || !ours {
                        return;
                    }
                    match new {
                        NFT_MSG_NEWSET => sets.extend(parse_set(payload)),
                        NFT_MSG_NEWCHAIN => chains.push(parse_chain(payload)),
                        _ => rules.push(parse_rule(payload)),
                    }
                },
                |_| true,
            )?;
            desc.sets.extend(sets);
            desc.chains.extend(chains);
            desc.rules.extend(rules);
        }
        Ok(Some(desc))
    }

    /// The ruleset's generation: every committed change (a batch, an `nft` command) moves it
    /// on. The packet path's own set updates and expiring elements are no commits and do not
    /// (from the kernel's code; no test here shows it).
    fn generation(&mut self, family: NftFamily) -> Result<u32, NlError> {
        let what = self.request(
            NFT_MSG_GETGEN,
            NLM_F_ACK,
            family,
            &[],
            None,
            "get the ruleset generation".into(),
        )?;
        let mut id = None;
        self.receive(&what, |ty, payload| {
            if ty == nft_type(NFT_MSG_NEWGEN) {
                id = attrs(payload.get(4..).unwrap_or_default())
                    .find(|(t, _)| *t == NFTA_GEN_ID)
                    .and_then(|(_, v)| be_u32(v));
            }
        })?;
        id.ok_or_else(|| {
            NlError::new(
                what,
                io::Error::new(io::ErrorKind::InvalidData, "no generation in the answer"),
            )
        })
    }

    /// A dump (`get` with `NLM_F_DUMP`) folded into a `T` by `f`. A dump continues where the
    /// last datagram ended by counting objects, so a change meanwhile can make it miss or
    /// repeat some: it is taken again, from a fresh `T`, when the ruleset's generation moved
    /// during it, when the kernel flagged it (`NLM_F_DUMP_INTR`, which nf_tables sets for sets,
    /// chains and rules but not for set elements), or when `whole` finds it is not (a hash
    /// set that grew is rehashed by a kernel worker after the commit, and a dump meanwhile
    /// walks it in two orders: a listing right after 30 000 elements were added repeated about
    /// 3 000 of them in place of as many others, in each of three runs). An error after
    /// [`DUMP_ATTEMPTS`] such dumps.
    fn dump<T: Default>(
        &mut self,
        get: u16,
        family: NftFamily,
        strings: &[(u16, &str)],
        what: &str,
        mut f: impl FnMut(&mut T, u16, &[u8]),
        whole: impl Fn(&T) -> bool,
    ) -> Result<T, NlError> {
        for attempt in 0..DUMP_ATTEMPTS {
            if attempt > 0 {
                // Let a burst of changes pass: 5, 10, 20 .. 320 ms, 635 ms in all.
                std::thread::sleep(std::time::Duration::from_millis(5 << (attempt - 1)));
            }
            let before = self.generation(family)?;
            let what = self.request(get, NLM_F_DUMP, family, strings, None, what.to_string())?;
            let mut acc = T::default();
            self.receive(&what, |ty, payload| f(&mut acc, ty, payload))?;
            if !self.dump_interrupted && self.generation(family)? == before && whole(&acc) {
                return Ok(acc);
            }
        }
        Err(NlError::new(
            what.to_string(),
            io::Error::new(
                io::ErrorKind::Interrupted,
                format!("the ruleset changed during each of {DUMP_ATTEMPTS} dumps"),
            ),
        ))
    }

    /// Every element of a set, intervals joined back into prefixes.
    pub fn list(
        &mut self,
        family: NftFamily,
        table: &str,
        set: &str,
        interval: bool,
    ) -> Result<Vec<SetElement>, NlError> {
        let dumped = self.dump(
            NFT_MSG_GETSETELEM,
            family,
            &[
                (NFTA_SET_ELEM_LIST_TABLE, table),
                (NFTA_SET_ELEM_LIST_SET, set),
            ],
            &format!("list set {table} {set}"),
            |dumped: &mut Vec<_>, _, payload| {
                for (ty, val) in attrs(payload.get(4..).unwrap_or_default()) {
                    if ty == NFTA_SET_ELEM_LIST_ELEMENTS {
                        for (_, elem) in attrs(val) {
                            if let Some(d) = parse_elem(elem) {
                                dumped.push(d);
                            }
                        }
                    }
                }
            },
            |dumped| no_repeats(dumped),
        )?;
        Ok(if interval {
            join_intervals(dumped)
        } else {
            dumped
                .into_iter()
                .filter_map(|d| {
                    Some(SetElement {
                        target: IpNet::from(key_addr(&d.key)?),
                        expires: d.expires_ms.map(ms_duration),
                    })
                })
                .collect()
        })
    }

    /// Whether a hash set holds `addr` (`GETSETELEM` of one key: no dump).
    pub fn contains(
        &mut self,
        family: NftFamily,
        table: &str,
        set: &str,
        addr: IpAddr,
    ) -> Result<bool, NlError> {
        let what = self.request(
            NFT_MSG_GETSETELEM,
            NLM_F_ACK,
            family,
            &[
                (NFTA_SET_ELEM_LIST_TABLE, table),
                (NFTA_SET_ELEM_LIST_SET, set),
            ],
            Some(&Elem::addr(addr, None)),
            format!("get element {addr} of {table} {set}"),
        )?;
        match self.receive(&what, |_, _| {}) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs `ops` as one transaction in table `family table`.
    pub fn apply(&mut self, family: NftFamily, table: &str, ops: &[Op]) -> Result<(), NlError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::new();
        let begin_seq = self.next_seq();
        batch.extend(
            Msg::new(
                NFNL_MSG_BATCH_BEGIN,
                NLM_F_REQUEST,
                begin_seq,
                0,
                NFNL_SUBSYS_NFTABLES,
            )
            .finish(),
        );
        let mut described = Vec::new();
        for op in ops {
            let (ty, flags, set, elems) = match op {
                Op::Add { set, elems } => (NFT_MSG_NEWSETELEM, NLM_F_CREATE, set, &elems[..]),
                Op::Delete { set, elems } => (NFT_MSG_DELSETELEM, 0, set, &elems[..]),
                Op::Flush { set } => (NFT_MSG_DELSETELEM, 0, set, &[][..]),
                Op::Destroy { set, elems } => (NFT_MSG_DESTROYSETELEM, 0, set, &elems[..]),
            };
            let chunks: Vec<&[Elem]> = if elems.is_empty() {
                vec![&[]]
            } else {
                elems.chunks(CHUNK).collect()
            };
            for chunk in chunks {
                let seq = self.next_seq();
                let mut m = Msg::new(
                    nft_type(ty),
                    NLM_F_REQUEST | NLM_F_ACK | flags,
                    seq,
                    nfproto(family),
                    0,
                );
                m.put_str(NFTA_SET_ELEM_LIST_TABLE, table);
                m.put_str(NFTA_SET_ELEM_LIST_SET, set);
                if !chunk.is_empty() {
                    let nest = m.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
                    for e in chunk {
                        m.put_elem(e);
                    }
                    m.end_nest(nest);
                }
                batch.extend(m.finish());
                let verb = match op {
                    Op::Add { .. } => "add element to",
                    Op::Delete { .. } => "delete element from",
                    Op::Flush { .. } => "flush",
                    Op::Destroy { .. } => DESTROY_WHAT,
                };
                let what = if verb == DESTROY_WHAT {
                    format!("{verb} {table} {set}")
                } else {
                    format!("{verb} set {table} {set}")
                };
                described.push((seq, what));
            }
        }
        let end_seq = self.next_seq();
        batch.extend(
            Msg::new(
                NFNL_MSG_BATCH_END,
                NLM_F_REQUEST,
                end_seq,
                0,
                NFNL_SUBSYS_NFTABLES,
            )
            .finish(),
        );
        self.send(&batch, "batch")?;
        // One acknowledgement per message; the first error names the message.
        let mut pending = described.len();
        let mut first_err: Option<NlError> = None;
        while pending > 0 {
            let n = self.recv("batch")?;
            let mut off = 0;
            while let Some((hdr, payload)) = next_msg(&self.buf[..n], &mut off) {
                if hdr.ty != NLMSG_ERROR {
                    continue;
                }
                let errno = payload
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                // The acknowledged message's header follows the errno.
                let acked = payload
                    .get(4 + 8..4 + 12)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(hdr.seq);
                if acked == begin_seq || acked == end_seq {
                    // The batch as a whole was refused (no permission, no nf_tables).
                    return Err(NlError::new(
                        "batch",
                        io::Error::from_raw_os_error(-errno.min(-1)),
                    ));
                }
                if let Some((_, what)) = described.iter().find(|(s, _)| *s == acked) {
                    pending -= 1;
                    if errno != 0 && first_err.is_none() {
                        first_err = Some(NlError::new(
                            what.clone(),
                            io::Error::from_raw_os_error(-errno),
                        ));
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn send(&mut self, buf: &[u8], what: &str) -> Result<(), NlError> {
        let sent = self
            .sock
            .send(buf, 0)
            .map_err(|e| NlError::new(what.to_string(), e))?;
        if sent != buf.len() {
            return Err(NlError::new(
                what.to_string(),
                io::Error::other(format!("sent {sent} of {} bytes", buf.len())),
            ));
        }
        Ok(())
    }

    fn recv(&mut self, what: &str) -> Result<usize, NlError> {
        loop {
            // SAFETY: recv into our own buffer of its length.
            let n = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    return Err(NlError::new(
                        what.to_string(),
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no answer from the kernel in {REPLY_TIMEOUT:?}"),
                        ),
                    ));
                }
                _ => return Err(NlError::new(what.to_string(), e)),
            }
        }
    }

    /// Reads the answers to one request: each data message goes to `f`; ends at the
    /// acknowledgement (errno 0 is success) or `NLMSG_DONE`.
    fn receive(&mut self, what: &str, mut f: impl FnMut(u16, &[u8])) -> Result<(), NlError> {
        self.dump_interrupted = false;
        loop {
            let n = self.recv(what)?;
            let mut off = 0;
            let mut done = false;
            let mut err = None;
            while let Some((hdr, payload)) = next_msg(&self.buf[..n], &mut off) {
                self.dump_interrupted |= hdr.flags & NLM_F_DUMP_INTR != 0;
                match hdr.ty {
                    NLMSG_DONE => done = true,
                    NLMSG_ERROR => {
                        let errno = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(0);
                        if errno != 0 {
                            err = Some(NlError::new(
                                what.to_string(),
                                io::Error::from_raw_os_error(-errno),
                            ));
                        }
                        done = true;
                    }
                    ty => f(ty, payload),
                }
            }
            if let Some(e) = err {
                return Err(e);
            }
            if done {
                return Ok(());
            }
        }
    }
}

/// A set's name, flags and key as a NEWSET message carries them.
fn parse_set(payload: &[u8]) -> Option<SetDesc> {
    let (mut name, mut flags, mut key_len, mut key_type) = (None, 0, 0, 0);
    for (ty, val) in attrs(payload.get(4..)?) {
        match ty {
            NFTA_SET_NAME => name = Some(cstr(val).to_string()),
            NFTA_SET_FLAGS => flags = be_u32(val).unwrap_or(0),
            NFTA_SET_KEY_LEN => key_len = be_u32(val).unwrap_or(0),
            NFTA_SET_KEY_TYPE => key_type = be_u32(val).unwrap_or(0),
            _ => {}
        }
    }
    Some(SetDesc {
        name: name?,
        info: SetInfo {
            interval: flags & NFT_SET_INTERVAL != 0,
            timeout: flags & NFT_SET_TIMEOUT != 0,
            key_len,
            key_type,
        },
    })
}

/// A chain's name and hook as a NEWCHAIN message carries them.
fn parse_chain(payload: &[u8]) -> ChainDesc {
    let mut chain = ChainDesc {
        name: String::new(),
        hook: None,
    };
    for (t, v) in attrs(payload.get(4..).unwrap_or_default()) {
        match t {
            NFTA_CHAIN_NAME => chain.name = cstr(v).to_string(),
            NFTA_CHAIN_HOOK => {
                let (mut num, mut prio) = (None, None);
                for (t, v) in attrs(v) {
                    match t {
                        NFTA_HOOK_HOOKNUM => num = be_u32(v),
                        NFTA_HOOK_PRIORITY => prio = be_u32(v).map(|p| p as i32),
                        _ => {}
                    }
                }
                chain.hook = num.zip(prio);
            }
            _ => {}
        }
    }
    chain
}

/// A rule's chain and comment as a NEWRULE message carries them.
fn parse_rule(payload: &[u8]) -> RuleDesc {
    let mut rule = RuleDesc {
        chain: String::new(),
        comment: None,
    };
    for (t, v) in attrs(payload.get(4..).unwrap_or_default()) {
        match t {
            NFTA_RULE_CHAIN => rule.chain = cstr(v).to_string(),
            NFTA_RULE_USERDATA => rule.comment = rule_comment(v),
            _ => {}
        }
    }
    rule
}

/// A string attribute without its NUL (lossy: names are ASCII).
fn cstr(v: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end])
}

/// The comment in a rule's user data (libnftnl's TLVs).
fn rule_comment(mut udata: &[u8]) -> Option<String> {
    while let [ty, len, rest @ ..] = udata {
        let len = usize::from(*len);
        let value = rest.get(..len)?;
        if *ty == NFTNL_UDATA_RULE_COMMENT {
            return Some(cstr(value).into_owned());
        }
        udata = &rest[len..];
    }
    None
}

fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

fn nfproto(family: NftFamily) -> u8 {
    match family {
        NftFamily::Inet => NFPROTO_INET,
        NftFamily::Ip => NFPROTO_IPV4,
        NftFamily::Ip6 => NFPROTO_IPV6,
    }
}

fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

fn ms_duration(ms: u64) -> SignedDuration {
    SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn key_addr(key: &[u8]) -> Option<IpAddr> {
    match key.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(key).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(key).ok()?)),
        _ => None,
    }
}

/// An element of a dump: `NFTA_LIST_ELEM`'s attributes.
fn parse_elem(elem: &[u8]) -> Option<Dumped> {
    let mut key = None;
    let mut flags = 0;
    let mut expires = None;
    for (ty, val) in attrs(elem) {
        match ty {
            NFTA_SET_ELEM_KEY => {
                key = attrs(val)
                    .find(|(t, _)| *t == NFTA_DATA_VALUE)
                    .map(|(_, v)| v.to_vec());
            }
            NFTA_SET_ELEM_FLAGS => flags = be_u32(val).unwrap_or(0),
            NFTA_SET_ELEM_EXPIRATION => expires = be_u64(val),
            _ => {}
        }
    }
    Some(Dumped {
        key: key?,
        interval_end: flags & NFT_SET_ELEM_INTERVAL_END != 0,
        expires_ms: expires,
    })
}

/// Whether no element was dumped twice (an interval's start and end share no key with
/// another start or end).
fn no_repeats(dumped: &[Dumped]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(dumped.len());
    dumped
        .iter()
        .all(|d| seen.insert((d.key.as_slice(), d.interval_end)))
}

/// Interval elements (starts, and ends flagged `INTERVAL_END` holding the address after the
/// interval) back into prefixes, in address order. A start without an end runs to the top of
/// the address space.
fn join_intervals(mut dumped: Vec<Dumped>) -> Vec<SetElement> {
    // Same key: the end of one interval sorts before the start of the next.
    dumped.sort_by(|a, b| {
        (a.key.len(), &a.key, !a.interval_end).cmp(&(b.key.len(), &b.key, !b.interval_end))
    });
    let mut out = Vec::new();
    let mut i = 0;
    while i < dumped.len() {
        let start = &dumped[i];
        i += 1;
        if start.interval_end {
            continue; // an end without its start (never from the kernel)
        }
        let Some(first) = key_addr(&start.key) else {
            continue;
        };
        let end = dumped
            .get(i)
            .filter(|d| d.interval_end && d.key.len() == start.key.len());
        let last = match end {
            Some(e) => {
                i += 1;
                key_addr(&e.key).and_then(prev_addr)
            }
            None => Some(match first {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::BROADCAST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(u128::MAX)),
            }),
        };
        let Some(last) = last else { continue };
        let expires = start.expires_ms.map(ms_duration);
        let nets: Vec<IpNet> = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => {
                ipnet::Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect()
            }
            (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => {
                ipnet::Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect()
            }
            _ => Vec::new(),
        };
        out.extend(
            nets.into_iter()
                .map(|target| SetElement { target, expires }),
        );
    }
    out
}

fn prev_addr(a: IpAddr) -> Option<IpAddr> {
    match a {
        IpAddr::V4(a) => u32::from(a)
            .checked_sub(1)
            .map(|n| Ipv4Addr::from(n).into()),
        IpAddr::V6(a) => u128::from(a)
            .checked_sub(1)
            .map(|n| Ipv6Addr::from(n).into()),
    }
}

/// A netlink message header, as read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) ty: u16,
    flags: u16,
    seq: u32,
}

/// The next message in `buf` from `off` (which it advances): header and payload.
pub(crate) fn next_msg<'a>(buf: &'a [u8], off: &mut usize) -> Option<(Header, &'a [u8])> {
    let rest = buf.get(*off..)?;
    if rest.len() < 16 {
        return None;
    }
    let len = u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize;
    if len < 16 || len > rest.len() {
        return None;
    }
    let hdr = Header {
        ty: u16::from_ne_bytes(rest[4..6].try_into().ok()?),
        flags: u16::from_ne_bytes(rest[6..8].try_into().ok()?),
        seq: u32::from_ne_bytes(rest[8..12].try_into().ok()?),
    };
    *off += align(len);
    Some((hdr, &rest[16..len]))
}

/// The attributes in `buf`: `(type without flags, payload)`.
fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        let rest = buf.get(off..)?;
        if rest.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        off += align(len);
        Some((ty, &rest[4..len]))
    })
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A message being written: header, `nfgenmsg`, attributes.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        // nfgenmsg: family, version (NFNETLINK_V0), res_id (big-endian)
        buf.push(family);
        buf.push(0);
        buf.extend_from_slice(&res_id.to_be_bytes());
        Msg { buf }
    }

    fn put(&mut self, ty: u16, val: &[u8]) {
        let len = 4 + val.len();
        self.buf
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(val);
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn put_str(&mut self, ty: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(ty, &v);
    }

    fn nest(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn end_nest(&mut self, at: usize) {
        let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn put_elem(&mut self, e: &Elem) {
        let elem = self.nest(NFTA_LIST_ELEM);
        let key = self.nest(NFTA_SET_ELEM_KEY);
        self.put(NFTA_DATA_VALUE, &e.key);
        self.end_nest(key);
        if e.interval_end {
            self.put(
                NFTA_SET_ELEM_FLAGS,
                &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
            );
        }
        if let Some(ms) = e.timeout_ms {
            self.put(NFTA_SET_ELEM_TIMEOUT, &ms.to_be_bytes());
        }
        self.end_nest(elem);
    }

    fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_that_repeats_an_element_is_not_whole() {
        let d = |key: &[u8], interval_end| Dumped {
            key: key.to_vec(),
            interval_end,
            expires_ms: None,
        };
        assert!(no_repeats(&[]));
        // One interval's end and the next one's start share a key.
        assert!(no_repeats(&[
            d(&[10, 0, 0, 0], false),
            d(&[10, 0, 1, 0], true),
            d(&[10, 0, 1, 0], false),
        ]));
        assert!(!no_repeats(&[
            d(&[10, 0, 0, 1], false),
            d(&[10, 0, 0, 2], false),
            d(&[10, 0, 0, 1], false),
        ]));
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn an_element_message_is_laid_out_as_the_kernel_reads_it() {
        let mut m = Msg::new(nft_type(NFT_MSG_NEWSETELEM), NLM_F_REQUEST, 7, 1, 0);
        m.put_str(NFTA_SET_ELEM_LIST_TABLE, "pw");
        let n = m.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
        m.put_elem(&Elem::addr("192.0.2.7".parse().unwrap(), Some(60_000)));
        m.end_nest(n);
        let b = m.finish();
        assert_eq!(b.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 0x0a0c);
        assert_eq!(&b[16..20], &[1, 0, 0, 0]);
        // "pw\0" padded to 4: len 7
        assert_eq!(&b[20..28], &[7, 0, 1, 0, b'p', b'w', 0, 0]);
        let mut off = 0;
        let (hdr, payload) = next_msg(&b, &mut off).unwrap();
        assert_eq!((hdr.seq, off), (7, b.len()));
        let top: Vec<_> = attrs(&payload[4..]).collect();
        assert_eq!(top.len(), 2);
        assert_eq!(top[1].0, NFTA_SET_ELEM_LIST_ELEMENTS);
        let (_, elem) = attrs(top[1].1).next().unwrap();
        let inner: Vec<_> = attrs(elem).collect();
        assert_eq!(inner[0].0, NFTA_SET_ELEM_KEY);
        assert_eq!(attrs(inner[0].1).next().unwrap().1, &[192, 0, 2, 7]);
        assert_eq!(
            inner[1],
            (NFTA_SET_ELEM_TIMEOUT, &60_000u64.to_be_bytes()[..])
        );
    }

    #[test]
    fn prefixes_become_intervals_and_back() {
        let e = Elem::for_net(&net("10.1.0.0/16"), true, Some(1000));
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].key, vec![10, 1, 0, 0]);
        assert_eq!(
            (e[1].key.clone(), e[1].interval_end),
            (vec![10, 2, 0, 0], true)
        );
        // The top of the address space has no end element.
        assert_eq!(Elem::for_net(&net("255.255.255.0/24"), true, None).len(), 1);
        assert_eq!(Elem::for_net(&net("10.1.0.0/16"), false, None).len(), 1);
        let dump = |key: Vec<u8>, end: bool, ms: Option<u64>| Dumped {
            key,
            interval_end: end,
            expires_ms: ms,
        };
        // Out of order, an end sharing its key with the next start, an open last interval.
        let listed = join_intervals(vec![
            dump(vec![10, 2, 0, 0], false, Some(5_000)),
            dump(vec![10, 2, 0, 1], true, None),
            dump(vec![10, 1, 0, 0], false, Some(2_500)),
            dump(vec![10, 2, 0, 0], true, None),
            dump(vec![255, 255, 255, 0], false, None),
        ]);
        assert_eq!(
            listed,
            vec![
                SetElement {
                    target: net("10.1.0.0/16"),
                    expires: Some(SignedDuration::from_millis(2_500))
                },
                SetElement {
                    target: net("10.2.0.0/32"),
                    expires: Some(SignedDuration::from_secs(5))
                },
                SetElement {
                    target: net("255.255.255.0/24"),
                    expires: None
                },
            ]
        );
    }

    #[test]
    fn rule_comments_are_read_from_libnftnl_user_data() {
        // Another TLV first (type 1, 2 bytes), then the comment with its NUL.
        let mut udata = vec![1, 2, 0xaa, 0xbb, 0, 12];
        udata.extend_from_slice(b"portwarden 1\0");
        udata.truncate(6 + 12);
        assert_eq!(rule_comment(&udata).as_deref(), Some("portwarden 1"));
        assert_eq!(rule_comment(&[1, 2, 0xaa, 0xbb]), None);
        assert_eq!(rule_comment(&[0, 40, b'x']), None);
        assert_eq!(rule_comment(&[]), None);
    }

    #[test]
    fn malformed_answers_end_the_walk_instead_of_panicking() {
        assert!(next_msg(&[1, 2, 3], &mut 0).is_none());
        let mut bad = vec![0u8; 20];
        bad[0..4].copy_from_slice(&200u32.to_ne_bytes());
        assert!(next_msg(&bad, &mut 0).is_none());
        assert_eq!(attrs(&[9, 0, 1, 0]).count(), 0);
        assert_eq!(attrs(&[2, 0]).count(), 0);
        assert!(parse_elem(&[]).is_none());
    }

    #[test]
    fn a_large_write_is_split_into_messages_the_16_bit_lengths_can_hold() {
        let mut m = Msg::new(nft_type(NFT_MSG_NEWSETELEM), NLM_F_REQUEST, 1, 1, 0);
        let n = m.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
        for _ in 0..CHUNK {
            m.put_elem(&Elem::addr("2001:db8::1".parse().unwrap(), Some(u64::MAX)));
        }
        m.end_nest(n);
        assert!(m.buf.len() - n < usize::from(u16::MAX));
    }
}
