//! The usage text of every `irm` command, in the prototype's words.

pub const IPCP_CREATE: &str = "irm ipcp create    type TYPE name NAME";
pub const IPCP_DESTROY: &str = "irm ipcp destroy   name NAME";
pub const IPCP_BOOTSTRAP: &str = "\
irm ipcp bootstrap type TYPE name NAME layer LAYER [PARAM VALUE]... [autobind]
  local:      [hash ALGO]
  eth-llc:    dev IFACE [hash ALGO]
  eth-dix:    dev IFACE [ethertype 0xA000] [hash ALGO]
  udp4, udp6: ip ADDR [port 3435] [dns ADDR[:PORT]] [dns_zone ZONE] [hosts FILE]
  unicast:    [addr 4] [eid 8] [ttl 60] [addr_auth flat] [routing link_state|lfa|ecmp]
              [congestion none|mb-ecn] [directory DHT] [ls_t_recalc S] [ls_t_update S]
              [ls_t_timeo S] [dht_alpha N] [dht_k N] [dht_t_expire S] [dht_t_refresh S]
              [dht_t_replicate S] [hash ALGO] [autobind]
  broadcast:  [autobind]
  ALGO: SHA3_224 | SHA3_256 | SHA3_384 | SHA3_512 (default SHA3_256)";
pub const IPCP_ENROLL: &str = "\
irm ipcp enroll    name NAME [type TYPE] [dst DST] [layer LAYER] [autobind]
  Join the layer of DST: a member's IPCP name, or the layer's name. The IPCP is created
  if it does not exist (type unicast unless TYPE is broadcast). Without dst, LAYER is the
  destination; with both, the layer joined must be LAYER. autobind binds the IPCP to NAME
  and to the layer's name, so that its peers' flows reach it.
  No local name is needed: DST lives in a layer below (irm name reg on its system).";
pub const IPCP_CONNECT: &str = "\
irm ipcp connect    name NAME component (dt|mgmt) dst DST [qos CUBE]
  Make an adjacency of a component of IPCP NAME to the member DST (its IPCP name):
  mgmt (management: routing and directory updates) or dt (data transfer), over a flow
  of a layer below with QoS CUBE (raw, best, video, voice, data). Connect mgmt first.";
pub const IPCP_DISCONNECT: &str = "\
irm ipcp disconnect name NAME component (dt|mgmt) dst DST
  Take down the adjacency of a component of IPCP NAME to the member DST.";
pub const IPCP_LIST: &str = "irm ipcp list      [type TYPE] [name NAME] [layer LAYER] [--json]";
pub const IPCP_SHOW: &str = "\
irm ipcp show      NAME [--json]
irm ipcp show      name NAME [--json]";

pub const BIND: &str = "\
irm bind   program PROG name NAME [auto] [-- ARGS...]
irm bind   process PID  name NAME
irm bind   ipcp    IPCP name NAME";
pub const UNBIND: &str = "\
irm unbind program PROG name NAME
irm unbind process PID  name NAME
irm unbind ipcp    IPCP name NAME";

pub const NAME_CREATE: &str = "irm name create  NAME [lb (spill|round-robin)]";
pub const NAME_DESTROY: &str = "irm name destroy NAME";
pub const NAME_REG: &str = "irm name reg     NAME (layer LAYER | ipcp IPCP)...";
pub const NAME_UNREG: &str = "irm name unreg   NAME (layer LAYER | ipcp IPCP)...";
pub const NAME_LIST: &str = "irm name list [--json]";

pub const FLOW_LIST: &str = "irm flow list [--json]";

pub const IPCP: &str = "\
irm ipcp create    type TYPE name NAME
irm ipcp destroy   name NAME
irm ipcp bootstrap type TYPE name NAME layer LAYER [PARAM VALUE]... [autobind]
irm ipcp enroll    name NAME [type TYPE] [dst DST] [layer LAYER] [autobind]
irm ipcp connect    name NAME component (dt|mgmt) dst DST [qos CUBE]
irm ipcp disconnect name NAME component (dt|mgmt) dst DST
irm ipcp list      [type TYPE] [name NAME] [layer LAYER] [--json]
irm ipcp show      NAME [--json]
TYPE: local, eth-llc, eth-dix, udp4, udp6, unicast, broadcast
(irm ipcp bootstrap help: the parameters of each type)";

pub const NAME: &str = "\
irm name create  NAME [lb (spill|round-robin)]
irm name destroy NAME
irm name reg     NAME (layer LAYER | ipcp IPCP)...
irm name unreg   NAME (layer LAYER | ipcp IPCP)...
irm name list    [--json]";

pub const FLOW: &str = FLOW_LIST;

pub const ALL: &str = "\
irm: manage the IPC processes, names and flows of this system

irm ipcp create    type TYPE name NAME
irm ipcp destroy   name NAME
irm ipcp bootstrap type TYPE name NAME layer LAYER [PARAM VALUE]... [autobind]
irm ipcp enroll    name NAME [type TYPE] [dst DST] [layer LAYER] [autobind]
irm ipcp connect    name NAME component (dt|mgmt) dst DST [qos CUBE]
irm ipcp disconnect name NAME component (dt|mgmt) dst DST
irm ipcp list      [type TYPE] [name NAME] [layer LAYER]
irm ipcp show      NAME
irm bind   program PROG name NAME [auto] [-- ARGS...]
irm bind   process PID  name NAME
irm bind   ipcp    IPCP name NAME
irm unbind program PROG name NAME | process PID name NAME | ipcp IPCP name NAME
irm name create  NAME [lb (spill|round-robin)]
irm name destroy NAME
irm name reg     NAME (layer LAYER | ipcp IPCP)...
irm name unreg   NAME (layer LAYER | ipcp IPCP)...
irm name list
irm flow list

TYPE: local, eth-llc, eth-dix, udp4, udp6, unicast, broadcast
--json         print listings as JSON (anywhere on the command line)
--help, help   this text; `irm ipcp help`, `irm ipcp bootstrap help`, ... for one command
--version      print the version";
