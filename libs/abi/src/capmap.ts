/**
 * Linux capability → FreeBSD priv(9) privileges.
 *
 * Started from libs/abi/reference/cap-priv-map.tsv (a proposal, not something FreeBSD ships) and
 * corrected where Linux says otherwise; every change is in the row's note, prefixed "capulator:".
 *
 * Semantics: a process holding `capability` may be granted any of `privileges`; a privilege may
 * appear under several capabilities (any-of), and then Linux accepts any one of them for the
 * operation (e.g. IP_TRANSPARENT: CAP_NET_RAW or CAP_NET_ADMIN). For every privilege the
 * classifier returns, capabilitiesOfPrivilege() is exactly the set of capabilities Linux checks.
 * confidence: exact | partial | none (no FreeBSD privilege: only capulator pseudo-privileges,
 * section "linux", see privileges.ts).
 */

export interface CapMapping {
  capability: string;
  privileges: string[];
  confidence: 'exact' | 'partial' | 'none';
  note: string;
}

const ROWS: CapMapping[] = [
  {
    capability: "CAP_CHOWN",
    privileges: ["PRIV_VFS_CHOWN"],
    confidence: "exact",
    note: "FreeBSD checks it in the FS setattr paths when the new uid differs or the new gid is not a group of the caller. illumos LX: file_chown+file_chown_self. Changing the owner of SysV IPC objects is CAP_SYS_ADMIN on Linux (PRIV_IPC_ADMIN).",
  },
  {
    capability: "CAP_DAC_OVERRIDE",
    privileges: ["PRIV_VFS_READ", "PRIV_VFS_WRITE", "PRIV_VFS_EXEC", "PRIV_VFS_LOOKUP", "PRIV_SEM_WRITE"],
    confidence: "exact",
    note: "The four PRIV_VFS_* are the vaccess() DAC overrides; FreeBSD uses PRIV_VFS_LOOKUP for exec/search on directories. Neither OS lets execve() run a file with no x bit. PRIV_SEM_WRITE overrides write permission on FreeBSD POSIX semaphores; on Linux those are files under /dev/shm, so plain DAC applies. illumos LX: file_dac_read+file_dac_write+file_dac_execute.",
  },
  {
    capability: "CAP_DAC_READ_SEARCH",
    privileges: ["PRIV_VFS_READ", "PRIV_VFS_LOOKUP", "PRIV_VFS_FHOPEN", "PRIV_VFS_FHSTAT", "PRIV_VFS_FHSTATFS", "PRIV_VFS_GETFH"],
    confidence: "partial",
    note: "FreeBSD has no read-only DAC override: PRIV_VFS_READ/LOOKUP also serve DAC_OVERRIDE. The fh* privileges match open_by_handle_at; Linux name_to_handle_at needs no capability, but FreeBSD getfh(2) needs PRIV_VFS_GETFH. illumos LX: file_dac_search+file_dac_read.",
  },
  {
    capability: "CAP_FOWNER",
    privileges: ["PRIV_VFS_ADMIN", "PRIV_VFS_LINK", "PRIV_VFS_STICKYFILE", "PRIV_VFS_CHFLAGS_DEV", "PRIV_MQ_ADMIN"],
    confidence: "partial",
    note: "PRIV_VFS_ADMIN is the VADMIN override: chmod, utimes, ACLs, user flags, deletion in sticky dirs. PRIV_VFS_LINK is the security.bsd.hardlink_check_uid bypass, like Linux protected_hardlinks. PRIV_VFS_STICKYFILE (sticky bit on a non-directory) has no Linux restriction at all. PRIV_MQ_ADMIN overrides owner-only ops on POSIX mqueues. illumos LX: file_owner.",
  },
  {
    capability: "CAP_FSETID",
    privileges: ["PRIV_VFS_RETAINSUGID", "PRIV_VFS_SETGID"],
    confidence: "exact",
    note: "RETAINSUGID keeps setuid/setgid bits on write/chown; SETGID allows S_ISGID when the file's group is not one of the caller's. illumos LX: file_setid.",
  },
  {
    capability: "CAP_KILL",
    privileges: ["PRIV_SIGNAL_DIFFCRED", "PRIV_SIGNAL_SUGID", "PRIV_SIGNAL_DIFFJAIL"],
    confidence: "exact",
    note: "cr_cansignal(). PRIV_SIGNAL_DIFFJAIL (signalling into other jails) has no Linux counterpart short of pid namespaces; map it only if the emulator models jails. illumos LX: proc_owner.",
  },
  {
    capability: "CAP_SETGID",
    privileges: ["PRIV_CRED_SETGID", "PRIV_CRED_SETEGID", "PRIV_CRED_SETREGID", "PRIV_CRED_SETRESGID", "PRIV_CRED_SETGROUPS", "PRIV_CRED_SETCRED"],
    confidence: "exact",
    note: "PRIV_CRED_SETCRED (setcred(2)) changes uid and gid state together, so it needs CAP_SETUID too if uids change. FreeBSD has no setfsgid. SCM_CREDS are filled in by the kernel and cannot be forged, so there is nothing to map. illumos LX: proc_setid (shared with SETUID: dropping only one of the two is not representable).",
  },
  {
    capability: "CAP_SETUID",
    privileges: ["PRIV_CRED_SETUID", "PRIV_CRED_SETEUID", "PRIV_CRED_SETREUID", "PRIV_CRED_SETRESUID", "PRIV_CRED_SETCRED"],
    confidence: "exact",
    note: "Seed example CAP_SETUID->PRIV_CRED_SETUID. mac_do(4) can grant these to unprivileged users by rule. PRIV_PROC_SETLOGIN/SETLOGINCLASS have no Linux equivalent (listed at the end). illumos LX: proc_setid.",
  },
  {
    capability: "CAP_SETPCAP",
    privileges: ["PRIV_LINUX_SETPCAP"],
    confidence: "none",
    note: "FreeBSD has no per-process capability sets, bounding set or securebits. In the emulator this capability should gate capset() growing the inheritable set, PR_CAPBSET_DROP and PR_SET_SECUREBITS. illumos LX: unmapped (capset with it set returns EPERM). capulator: mapped to the pseudo-privilege PRIV_LINUX_SETPCAP, which the classifier returns for PR_CAPBSET_DROP, PR_SET_SECUREBITS and capset adding CAP_SETPCAP.",
  },
  {
    capability: "CAP_LINUX_IMMUTABLE",
    privileges: ["PRIV_VFS_SYSFLAGS"],
    confidence: "partial",
    note: "Maps FS_IMMUTABLE_FL/FS_APPEND_FL to SF_IMMUTABLE/SF_APPEND (system flags, also limited by securelevel). FreeBSD also has UF_IMMUTABLE/UF_APPEND, which the owner may set without privilege. In a jail it needs allow.chflags. illumos LX: file_flag_set.",
  },
  {
    capability: "CAP_NET_BIND_SERVICE",
    privileges: ["PRIV_NETINET_RESERVEDPORT"],
    confidence: "exact",
    note: "FreeBSD threshold: net.inet.ip.portrange.reservedlow/reservedhigh (0..1023 by default); Linux: net.ipv4.ip_unprivileged_port_start. In a jail it needs allow.reserved_ports (on by default). illumos LX: net_privaddr.",
  },
  {
    capability: "CAP_NET_BROADCAST",
    privileges: ["PRIV_LINUX_NET_BROADCAST"],
    confidence: "none",
    note: "SO_BROADCAST and multicast membership are unprivileged on FreeBSD, and Linux hardly checks this capability. PRIV_NET_ADDMULTI/DELMULTI are interface-level ioctls and belong to CAP_NET_ADMIN. illumos LX: unmapped. capulator: mapped to its pseudo-privilege (section linux) so that a capset adding it is still decided by a privilege; capulator does not trap its other operations.",
  },
  {
    capability: "CAP_NET_ADMIN",
    privileges: ["PRIV_NET_BRIDGE", "PRIV_NET_GRE", "PRIV_NET_ROUTE", "PRIV_NET_TAP", "PRIV_NET_SETIFMTU", "PRIV_NET_SETIFFLAGS", "PRIV_NET_SETIFCAP", "PRIV_NET_SETIFNAME", "PRIV_NET_SETIFMETRIC", "PRIV_NET_SETIFPHYS", "PRIV_NET_ADDMULTI", "PRIV_NET_DELMULTI", "PRIV_NET_HWIOCTL", "PRIV_NET_SETLLADDR", "PRIV_NET_ADDIFGROUP", "PRIV_NET_DELIFGROUP", "PRIV_NET_IFCREATE", "PRIV_NET_IFDESTROY", "PRIV_NET_ADDIFADDR", "PRIV_NET_DELIFADDR", "PRIV_NET_LAGG", "PRIV_NET_GIF", "PRIV_NET_SETIFVNET", "PRIV_NET_SETIFDESCR", "PRIV_NET_SETIFFIB", "PRIV_NET_VXLAN", "PRIV_NET_SETLANPCP", "PRIV_NET_OVPN", "PRIV_NET_ME", "PRIV_NET_WG", "PRIV_NET_GENEVE", "PRIV_NET80211_VAP_GETKEY", "PRIV_NET80211_VAP_MANAGE", "PRIV_NET80211_VAP_SETMAC", "PRIV_NET80211_CREATE_VAP", "PRIV_NETATM_CFG", "PRIV_NETATM_ADD", "PRIV_NETATM_DEL", "PRIV_NETATM_SET", "PRIV_NETGRAPH_CONTROL", "PRIV_NETGRAPH_TTY", "PRIV_NETINET_IPFW", "PRIV_NETINET_DIVERT", "PRIV_NETINET_PF", "PRIV_NETINET_DUMMYNET", "PRIV_NETINET_CARP", "PRIV_NETINET_MROUTE", "PRIV_NETINET_ADDRCTRL6", "PRIV_NETINET_ND6", "PRIV_NETINET_SCOPE6", "PRIV_NETINET_ALIFETIME6", "PRIV_NETINET_IPSEC", "PRIV_NETINET_BINDANY", "PRIV_NETINET_HASHKEY", "PRIV_LINUX_SO_MARK", "PRIV_LINUX_SO_PRIORITY", "PRIV_LINUX_SO_DEBUG", "PRIV_LINUX_SOCKBUF_FORCE", "PRIV_LINUX_TCP_REPAIR"],
    confidence: "partial",
    note: "Seed example CAP_NET_ADMIN->PRIV_NET_{BRIDGE,ROUTE,LAGG,...}. PRIV_NET_RAW is listed here because FreeBSD checks it for PF_KEY sockets (key_attach) and generic raw_usrreq; Linux PF_KEY needs CAP_NET_ADMIN. PRIV_NET_SETIFMAC is not the hardware address but the mac(4) label of an interface, so it is under CAP_MAC_ADMIN (SETLLADDR is the hardware address). PRIV_NETINET_BINDANY (IP_BINDANY, like IP_TRANSPARENT) is also under NET_RAW. PRIV_NETINET_DIVERT: no Linux divert sockets; NFQUEUE is closest. ATM is gone from FreeBSD. In a non-vnet jail only PRIV_NET_ROUTE is possible (allow.routing); vnet jails get most of this set. illumos LX: sys_ip_config+sys_dl_config. capulator: PRIV_NET_RAW moved to CAP_NET_RAW only (Linux checks CAP_NET_RAW for AF_PACKET and SOCK_RAW; PF_KEY sockets, which need CAP_NET_ADMIN on Linux, are classified PRIV_NETINET_IPSEC). Added pseudo-privileges for socket options Linux gates on CAP_NET_ADMIN: SO_MARK and SO_PRIORITY>6 (also CAP_NET_RAW), SO_DEBUG, SO_SNDBUFFORCE/SO_RCVBUFFORCE, TCP_REPAIR. IP_TRANSPARENT (PRIV_NETINET_BINDANY) accepts CAP_NET_RAW or CAP_NET_ADMIN.",
  },
  {
    capability: "CAP_NET_RAW",
    privileges: ["PRIV_NETINET_RAW", "PRIV_NET_RAW", "PRIV_NET_BPF", "PRIV_NETINET_BINDANY", "PRIV_NETINET_SETHDROPTS", "PRIV_NETBLUETOOTH_RAW", "PRIV_LINUX_SO_MARK", "PRIV_LINUX_SO_PRIORITY", "PRIV_LINUX_SO_BINDTODEVICE"],
    confidence: "partial",
    note: "Seed example CAP_NET_RAW->PRIV_NETINET_RAW (raw IPv4/IPv6 sockets; in a non-vnet jail it needs allow.raw_sockets). FreeBSD has no AF_PACKET: packet capture is bpf(4), controlled by /dev/bpf permissions and not by a privilege (PRIV_NET_BPF only guards the net.bpf.stats sysctl). SETHDROPTS: Linux needs CAP_NET_RAW for IPv6 hop-by-hop/destination options; the FreeBSD use sites were not verified. illumos LX: net_rawaccess+net_icmpaccess. capulator: PRIV_NET_RAW added here (socket(AF_PACKET, ...) and SOCK_PACKET need CAP_NET_RAW, net/packet/af_packet.c) and removed from CAP_NET_ADMIN. Pseudo-privileges: SO_MARK and SO_PRIORITY>6 (CAP_NET_RAW or CAP_NET_ADMIN), SO_BINDTODEVICE re-binding (CAP_NET_RAW). PRIV_NETBLUETOOTH_RAW: Bluetooth raw HCI sockets need CAP_NET_RAW.",
  },
  {
    capability: "CAP_IPC_LOCK",
    privileges: ["PRIV_VM_MLOCK", "PRIV_VM_MUNLOCK"],
    confidence: "partial",
    note: "FreeBSD grants both to everyone by default (security.bsd.unprivileged_mlock=1), still bounded by RLIMIT_MEMLOCK and vm.max_user_wired. No FreeBSD privilege overrides RLIMIT_MEMLOCK, which Linux CAP_IPC_LOCK does. In a jail it needs allow.mlock. illumos LX: proc_lock_memory.",
  },
  {
    capability: "CAP_IPC_OWNER",
    privileges: ["PRIV_IPC_READ", "PRIV_IPC_WRITE"],
    confidence: "exact",
    note: "ipcperm() read/write overrides for SysV IPC. The owner-only override PRIV_IPC_ADMIN (IPC_SET/IPC_RMID) is CAP_SYS_ADMIN on Linux. illumos LX: ipc_dac_read+ipc_dac_write+ipc_owner (illumos also puts the owner override here).",
  },
  {
    capability: "CAP_SYS_MODULE",
    privileges: ["PRIV_KLD_LOAD", "PRIV_KLD_UNLOAD", "PRIV_FIRMWARE_LOAD"],
    confidence: "exact",
    note: "PRIV_FIRMWARE_LOAD is partial (loading firmware images as kernel modules via firmware(9)); Linux loads firmware without a user capability. illumos LX: unmapped.",
  },
  {
    capability: "CAP_SYS_RAWIO",
    privileges: ["PRIV_IO", "PRIV_KMEM_WRITE", "PRIV_KMEM_READ", "PRIV_CPUCTL_WRMSR", "PRIV_CPUCTL_UPDATE", "PRIV_VM86_INTCALL", "PRIV_DRIVER", "PRIV_VMM_PPTDEV"],
    confidence: "partial",
    note: "PRIV_IO is /dev/io (the iopl equivalent). PRIV_KMEM_READ is granted to every user by kern_priv.c (file permissions decide), so it never needs the capability in practice. PRIV_DRIVER is the drivers' catch-all; Linux drivers check SYS_ADMIN or SYS_RAWIO. PRIV_VMM_PPTDEV is PCI passthrough (no direct Linux analogue; VFIO is file-permission based). illumos LX: unmapped.",
  },
  {
    capability: "CAP_SYS_CHROOT",
    privileges: ["PRIV_VFS_CHROOT", "PRIV_VFS_FCHROOT"],
    confidence: "exact",
    note: "Linux setns(CLONE_NEWNS) also needs this capability, plus CAP_SYS_ADMIN; jail_attach is PRIV_JAIL_ATTACH (SYS_ADMIN). illumos LX: proc_chroot.",
  },
  {
    capability: "CAP_SYS_PTRACE",
    privileges: ["PRIV_DEBUG_DIFFCRED", "PRIV_DEBUG_SUGID", "PRIV_DEBUG_UNPRIV", "PRIV_DEBUG_DENIED", "PRIV_DEBUG_DIFFJAIL", "PRIV_PROC_MEM_WRITE", "PRIV_KTRACE", "PRIV_SEEOTHERUIDS", "PRIV_SEEOTHERGIDS", "PRIV_SEEJAILPROC"],
    confidence: "partial",
    note: "p_candebug(): DIFFCRED = another uid; SUGID = target is set-id; DENIED = P2_NOTRACE (like Linux dumpable=0, which CAP_SYS_PTRACE overrides); UNPRIV = security.bsd.unprivileged_proc_debug=0 (like Yama ptrace_scope). The SEE* privileges bypass the see_other_uids/gids/see_jail_proc visibility policies; Linux hidepid visibility is decided by a ptrace-read check. KTRACE only concerns the KTRFAC_ROOT flag. illumos LX: unmapped.",
  },
  {
    capability: "CAP_SYS_PACCT",
    privileges: ["PRIV_ACCT"],
    confidence: "exact",
    note: "acct(2). illumos LX: unmapped.",
  },
  {
    capability: "CAP_SYS_ADMIN",
    privileges: ["PRIV_VFS_MOUNT", "PRIV_VFS_UNMOUNT", "PRIV_VFS_MOUNT_NONUSER", "PRIV_VFS_MOUNT_OWNER", "PRIV_VFS_MOUNT_PERM", "PRIV_VFS_MOUNT_SUIDDIR", "PRIV_VFS_MOUNT_EXPORTED", "PRIV_SWAPON", "PRIV_SWAPOFF", "PRIV_UFS_QUOTAON", "PRIV_UFS_QUOTAOFF", "PRIV_UFS_SETUSE", "PRIV_VFS_SETQUOTA", "PRIV_VFS_GETQUOTA", "PRIV_UFS_EXTATTRCTL", "PRIV_VFS_EXTATTR_SYSTEM", "PRIV_SYSCTL_WRITE", "PRIV_SYSCTL_WRITEJAIL", "PRIV_SYSCTL_DEBUG", "PRIV_KENV_SET", "PRIV_KENV_UNSET", "PRIV_JAIL_ATTACH", "PRIV_JAIL_SET", "PRIV_JAIL_REMOVE", "PRIV_IPC_ADMIN", "PRIV_MAXFILES", "PRIV_PROC_LIMIT", "PRIV_TTY_CONSOLE", "PRIV_TTY_STI", "PRIV_TTY_EXCLUSIVE", "PRIV_TTY_SETA", "PRIV_TTY_DRAINWAIT", "PRIV_TTY_DTRWAIT", "PRIV_RANDOM_RESEED", "PRIV_DEVFS_RULE", "PRIV_DEVFS_SYMLINK", "PRIV_ZFS_POOL_CONFIG", "PRIV_ZFS_INJECT", "PRIV_ZFS_JAIL", "PRIV_NFS_DAEMON", "PRIV_NFS_LOCKD", "PRIV_SCHED_CPUSET_INTR", "PRIV_DRIVER", "PRIV_KDB_SET_BACKEND"],
    confidence: "partial",
    note: "Linux catch-all. Linux grounds for these: mount/swap/quota/trusted.* xattrs/namespaces (jails are the closest)/IPC_RMID and IPC_SET on others' objects/file-max (PRIV_MAXFILES)/RLIMIT_NPROC (PRIV_PROC_LIMIT, also SYS_RESOURCE)/TIOCCONS/TIOCSTI/TIOCEXCL bypass/TIOCSLCKTRMIOS (TTY_SETA)/serial setup (DRAINWAIT, DTRWAIT)/random admin/nfsservctl. sethostname maps to a kern.hostname sysctl write (PRIV_SYSCTL_WRITE; in a jail, allow.set_hostname). On Linux, sysctl and kenv writes are gated by /proc/sys file permissions, so those PRIVs are partial. CPUSET_INTR = IRQ affinity (root-owned /proc/irq files on Linux). illumos LX: sys_mount+sys_admin.",
  },
  {
    capability: "CAP_SYS_BOOT",
    privileges: ["PRIV_REBOOT", "PRIV_SETDUMPER"],
    confidence: "exact",
    note: "reboot(2). The Linuxulator's linux_reboot() checks PRIV_REBOOT for LINUX_REBOOT_CMD_CAD_ON/OFF and calls sys_reboot otherwise. PRIV_SETDUMPER (dump device) is partial: Linux crash-dump setup goes through kexec_load, which needs CAP_SYS_BOOT. illumos LX: unmapped.",
  },
  {
    capability: "CAP_SYS_NICE",
    privileges: ["PRIV_SCHED_SETPRIORITY", "PRIV_SCHED_RTPRIO", "PRIV_SCHED_IDPRIO", "PRIV_SCHED_DIFFCRED", "PRIV_SCHED_SETPOLICY", "PRIV_SCHED_SET", "PRIV_SCHED_SETPARAM", "PRIV_SCHED_CPUSET", "PRIV_SCHED_DIFFJAIL"],
    confidence: "partial",
    note: "No FreeBSD privilege covers Linux's ioprio classes, migrate_pages/move_pages or mbind MPOL_MF_MOVE_ALL. PRIV_SCHED_IDPRIO has no Linux counterpart (SCHED_IDLE is unprivileged on Linux). PRIV_SCHED_SETPRIORITY (201) is renamed PRIV_SCHED_RAISEPRIO in one unmerged branch. illumos LX: proc_prioup.",
  },
  {
    capability: "CAP_SYS_RESOURCE",
    privileges: ["PRIV_PROC_SETRLIMIT", "PRIV_PROC_LIMIT", "PRIV_MAXPROC", "PRIV_VFS_EXCEEDQUOTA", "PRIV_VFS_BLOCKRESERVE", "PRIV_IPC_MSGSIZE", "PRIV_PIPEBUF", "PRIV_VM_MADV_PROTECT", "PRIV_VM_SWAP_NOQUOTA", "PRIV_VM_SWAP_NORLIMIT", "PRIV_SYSCTL_MEMLOCK", "PRIV_RCTL_GET_RACCT", "PRIV_RCTL_GET_RULES", "PRIV_RCTL_GET_LIMITS", "PRIV_RCTL_ADD_RULE", "PRIV_RCTL_REMOVE_RULE"],
    confidence: "partial",
    note: "PRIV_PROC_SETRLIMIT_UID may not be upstream (see priv.tsv). SETRLIMIT = raising hard limits. PROC_LIMIT = exceeding RLIMIT_NPROC (FreeBSD checks the real uid; Linux also lets CAP_SYS_ADMIN through). BLOCKRESERVE = ext2-style reserved blocks. MADV_PROTECT = OOM-kill protection (like lowering oom_score_adj). The SWAP_* privileges bypass swap-reservation (overcommit) limits; on Linux the admin reserve goes with CAP_SYS_ADMIN. rctl(8) has no Linux counterpart (cgroups are file-permission based). PRIV_MAXPROC (system-wide kern.maxproc; real uid 0) has no cap bypass on Linux (threads-max). illumos LX: sys_resource. capulator: PRIV_PROC_SETRLIMIT_UID dropped (not in upstream priv.h, so not in the catalogue).",
  },
  {
    capability: "CAP_SYS_TIME",
    privileges: ["PRIV_ADJTIME", "PRIV_NTP_ADJTIME", "PRIV_CLOCK_SETTIME", "PRIV_SETTIMEOFDAY"],
    confidence: "exact",
    note: "In a jail these need allow.adjtime (the two adjust privileges) or allow.settime (all four). illumos LX: unmapped.",
  },
  {
    capability: "CAP_SYS_TTY_CONFIG",
    privileges: ["PRIV_KEYBOARD", "PRIV_TTY_DRAINWAIT", "PRIV_TTY_DTRWAIT"],
    confidence: "partial",
    note: "PRIV_KEYBOARD covers keymap reprogramming, like the Linux vt keyboard ioctls. Linux files serial setup under CAP_SYS_ADMIN, so DRAINWAIT/DTRWAIT are listed under both. vhangup(2) has no FreeBSD privilege: revoke(2) needs ownership or PRIV_VFS_ADMIN. illumos LX: unmapped.",
  },
  {
    capability: "CAP_MKNOD",
    privileges: ["PRIV_VFS_MKNOD_DEV"],
    confidence: "exact",
    note: "Seed example. kern_mknodat(): S_IFCHR/S_IFBLK -> PRIV_VFS_MKNOD_DEV; S_IFWHT -> PRIV_VFS_MKNOD_WHT; S_IFIFO with dev==0 -> mkfifo, no privilege. Linux whiteouts (char 0:0) do not need CAP_MKNOD, so MKNOD_WHT is left unmapped (overlayfs-style use only). illumos LX: unmapped.",
  },
  {
    capability: "CAP_LEASE",
    privileges: ["PRIV_LINUX_LEASE"],
    confidence: "none",
    note: "FreeBSD has no privileged file-lease API to map to. illumos LX: unmapped. capulator: mapped to its pseudo-privilege (section linux) so that a capset adding it is still decided by a privilege; capulator does not trap its other operations.",
  },
  {
    capability: "CAP_AUDIT_WRITE",
    privileges: ["PRIV_AUDIT_SUBMIT"],
    confidence: "exact",
    note: "audit(2) record submission. illumos LX: proc_audit.",
  },
  {
    capability: "CAP_AUDIT_CONTROL",
    privileges: ["PRIV_AUDIT_CONTROL", "PRIV_AUDIT_GETAUDIT", "PRIV_AUDIT_SETAUDIT", "PRIV_AUDIT_FAILSTOP"],
    confidence: "partial",
    note: "auditon(2)/auditctl(2) = AUDIT_CONTROL. setaudit/getaudit (session state, auid) are like Linux loginuid, which needs CAP_AUDIT_CONTROL. FAILSTOP (running during an audit fail-stop) has no Linux counterpart. In a jail GET/SETAUDIT need allow.setaudit. illumos LX: sys_audit.",
  },
  {
    capability: "CAP_SETFCAP",
    privileges: ["PRIV_LINUX_SETFCAP"],
    confidence: "none",
    note: "FreeBSD has no file capabilities. The emulator could treat setting the security.capability xattr (a system namespace EA, PRIV_VFS_EXTATTR_SYSTEM) as this capability. illumos LX: unmapped. capulator: mapped to its pseudo-privilege (section linux) so that a capset adding it is still decided by a privilege; capulator does not trap its other operations.",
  },
  {
    capability: "CAP_MAC_OVERRIDE",
    privileges: ["PRIV_VFS_STAT", "PRIV_VERIEXEC_DIRECT", "PRIV_VERIEXEC_NOVERIFY"],
    confidence: "partial",
    note: "PRIV_VFS_STAT exists to override MAC stat denials. mac_bsdextended also accepts PRIV_VFS_ADMIN/EXEC/LOOKUP/READ/WRITE as overrides of a denying ugidfw rule, so those double as MAC overrides there. VERIEXEC_* override integrity enforcement by mac_veriexec. mac_biba and mac_mls use their own privileged labels, not priv(9). illumos LX: unmapped.",
  },
  {
    capability: "CAP_MAC_ADMIN",
    privileges: ["PRIV_MAC_PARTITION", "PRIV_NET_SETIFMAC", "PRIV_VERIEXEC_CONTROL", "PRIV_MAC_PRIVS"],
    confidence: "partial",
    note: "PRIV_MAC_PARTITION is required to change the mac_partition label; NET_SETIFMAC sets an interface's MAC label; VERIEXEC_CONTROL configures veriexec. PRIV_MAC_PRIVS: no user found. ugidfw and mac_do rules are loaded through sysctl writes (PRIV_SYSCTL_WRITE), not a MAC-specific privilege. illumos LX: unmapped.",
  },
  {
    capability: "CAP_SYSLOG",
    privileges: ["PRIV_MSGBUF", "PRIV_DDB_CAPTURE"],
    confidence: "exact",
    note: "dmesg/kernel log. FreeBSD grants PRIV_MSGBUF to everyone while security.bsd.unprivileged_read_msgbuf=1 (the default); in a jail it needs allow.read_msgbuf. The Linuxulator's linux_syslog(SYSLOG_ACTION_READ_ALL) checks PRIV_MSGBUF; other syslog actions return EINVAL. DDB_CAPTURE (debugger capture buffer) is partial. illumos LX: unmapped.",
  },
  {
    capability: "CAP_WAKE_ALARM",
    privileges: ["PRIV_LINUX_WAKE_ALARM"],
    confidence: "none",
    note: "No FreeBSD alarm-timer privilege. illumos LX: unmapped. capulator: mapped to its pseudo-privilege (section linux) so that a capset adding it is still decided by a privilege; capulator does not trap its other operations.",
  },
  {
    capability: "CAP_BLOCK_SUSPEND",
    privileges: ["PRIV_LINUX_BLOCK_SUSPEND"],
    confidence: "none",
    note: "No FreeBSD wakelock privilege. illumos LX: unmapped. capulator: mapped to its pseudo-privilege (section linux) so that a capset adding it is still decided by a privilege; capulator does not trap its other operations.",
  },
  {
    capability: "CAP_AUDIT_READ",
    privileges: ["PRIV_LINUX_AUDIT_READ"],
    confidence: "none",
    note: "FreeBSD reads the audit trail through auditpipe(4), controlled by device permissions, not a privilege. Outside the illumos LX table (that table stops at cap 36). capulator: mapped to its pseudo-privilege (section linux) so that a capset adding it is still decided by a privilege; capulator does not trap its other operations.",
  },
  {
    capability: "CAP_PERFMON",
    privileges: ["PRIV_PMC_MANAGE", "PRIV_PMC_SYSTEM", "PRIV_DTRACE_KERNEL", "PRIV_DTRACE_PROC", "PRIV_DTRACE_USER"],
    confidence: "partial",
    note: "hwpmc(4) plus DTrace, the closest analogues of perf_events and tracing. Outside the illumos LX table.",
  },
  {
    capability: "CAP_BPF",
    privileges: ["PRIV_LINUX_BPF"],
    confidence: "none",
    note: "FreeBSD has no eBPF. PRIV_NET_BPF is classic bpf(4) packet capture (see CAP_NET_RAW). Outside the illumos LX table. capulator: mapped to its pseudo-privilege (section linux) so that a capset adding it is still decided by a privilege; capulator does not trap its other operations.",
  },
  {
    capability: "CAP_CHECKPOINT_RESTORE",
    privileges: ["PRIV_LINUX_CHECKPOINT_RESTORE"],
    confidence: "none",
    note: "No pid selection at fork and no ns_last_pid on FreeBSD. Outside the illumos LX table. capulator: mapped to its pseudo-privilege (section linux) so that a capset adding it is still decided by a privilege; capulator does not trap its other operations.",
  },
];

export const CAP_PRIV_MAP: readonly CapMapping[] = Object.freeze(
  ROWS.map((r) => Object.freeze({ ...r, privileges: Object.freeze([...r.privileges]) as unknown as string[] })),
);

const forward = new Map(CAP_PRIV_MAP.map((r) => [r.capability, r]));
const reverse = new Map<string, string[]>();
for (const r of CAP_PRIV_MAP) {
  for (const p of r.privileges) {
    const l = reverse.get(p) ?? [];
    l.push(r.capability);
    reverse.set(p, l);
  }
}

/** The privileges a capability stands for ([] for an unknown capability). */
export function privilegesOfCapability(cap: string): string[] {
  const n = cap.toUpperCase();
  const r = forward.get(n) ?? forward.get('CAP_' + n);
  return r ? [...r.privileges] : [];
}

/** The capabilities any one of which grants `priv` (reverse map; [] when none does). */
export function capabilitiesOfPrivilege(priv: string): string[] {
  return [...(reverse.get(priv.toUpperCase()) ?? [])];
}

export function capMappingOf(cap: string): CapMapping | undefined {
  const n = cap.toUpperCase();
  return forward.get(n) ?? forward.get('CAP_' + n);
}
