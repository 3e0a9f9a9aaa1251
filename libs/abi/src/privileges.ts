/**
 * FreeBSD priv(9) privilege catalogue (sys/sys/priv.h), plus capulator's own Linux-only
 * pseudo-privileges.
 *
 * Source: libs/abi/reference/priv.tsv (transcribed from sys/sys/priv.h, commit in its header).
 * Only `active` rows are here: removed (_PRIV_*), reserved, marker and module (PRIV_MODULE0–15)
 * numbers are left out, the alias PRIV_NET_SETVLANPCP (= PRIV_NET_SETLANPCP, 421) is only in
 * PRIVILEGE_ALIASES, and PRIV_PROC_SETRLIMIT_UID (164; seen only in an unmerged fork) is left out.
 *
 * `trappable` says whether capulator's seccomp agent can see the Linux operations this privilege
 * stands for precisely (a syscall, with register arguments or a copied argument that decides it).
 * Privileges that Linux checks inside path walks (DAC overrides), over netlink, through /proc or
 * /sys files, or that have no Linux operation at all, are not trappable; each carries a note.
 *
 * Pseudo-privileges (section "linux", numbers from 100000): Linux operations gated by a capability
 * for which FreeBSD has no privilege (capability sets, file capabilities, eBPF, …). They exist so
 * that every capability, and every operation the classifier reports, is named by some privilege.
 * They are capulator's vocabulary, not FreeBSD's.
 */

export interface Privilege {
  name: string;
  number: number;
  /** Short subsystem name: cred, vfs, net, netinet, sched, … ("linux" for pseudo-privileges). */
  section: string;
  trappable: boolean;
  /** Why the agent cannot see this privilege's operations precisely (untrappable ones only). */
  untrappedNote?: string;
  /** The priv.h comment (FreeBSD rows) or capulator's description (pseudo-privileges). */
  comment: string;
  /** True for capulator's Linux-only pseudo-privileges. */
  pseudo?: boolean;
}

/** First number of capulator's pseudo-privilege namespace (FreeBSD's _PRIV_HIGHEST is 713). */
export const PSEUDO_PRIV_BASE = 100000;

// [name, number, section, priv.h comment] for every active privilege of priv.tsv.
const FREEBSD_ROWS: ReadonlyArray<readonly [string, number, string, string]> = [
  ["PRIV_ACCT", 2, "base", "Manage process accounting."],
  ["PRIV_MAXFILES", 3, "base", "Exceed system open files limit."],
  ["PRIV_MAXPROC", 4, "base", "Exceed system processes limit."],
  ["PRIV_KTRACE", 5, "base", "Set/clear KTRFAC_ROOT on ktrace."],
  ["PRIV_SETDUMPER", 6, "base", "Configure dump device."],
  ["PRIV_REBOOT", 8, "base", "Can reboot system."],
  ["PRIV_SWAPON", 9, "base", "Can swapon()."],
  ["PRIV_SWAPOFF", 10, "base", "Can swapoff()."],
  ["PRIV_MSGBUF", 11, "base", "Can read kernel message buffer."],
  ["PRIV_IO", 12, "base", "Can perform low-level I/O."],
  ["PRIV_KEYBOARD", 13, "base", "Reprogram keyboard."],
  ["PRIV_DRIVER", 14, "base", "Low-level driver privilege."],
  ["PRIV_ADJTIME", 15, "base", "Set time adjustment."],
  ["PRIV_NTP_ADJTIME", 16, "base", "Set NTP time adjustment."],
  ["PRIV_CLOCK_SETTIME", 17, "base", "Can call clock_settime."],
  ["PRIV_SETTIMEOFDAY", 18, "base", "Can call settimeofday."],
  ["PRIV_AUDIT_CONTROL", 40, "audit", "Can configure audit."],
  ["PRIV_AUDIT_FAILSTOP", 41, "audit", "Can run during audit fail stop."],
  ["PRIV_AUDIT_GETAUDIT", 42, "audit", "Can get proc audit properties."],
  ["PRIV_AUDIT_SETAUDIT", 43, "audit", "Can set proc audit properties."],
  ["PRIV_AUDIT_SUBMIT", 44, "audit", "Can submit an audit record."],
  ["PRIV_CRED_SETUID", 50, "cred", "setuid."],
  ["PRIV_CRED_SETEUID", 51, "cred", "seteuid to !ruid and !svuid."],
  ["PRIV_CRED_SETGID", 52, "cred", "setgid."],
  ["PRIV_CRED_SETEGID", 53, "cred", "setgid to !rgid and !svgid."],
  ["PRIV_CRED_SETGROUPS", 54, "cred", "Set process additional groups."],
  ["PRIV_CRED_SETREUID", 55, "cred", "setreuid."],
  ["PRIV_CRED_SETREGID", 56, "cred", "setregid."],
  ["PRIV_CRED_SETRESUID", 57, "cred", "setresuid."],
  ["PRIV_CRED_SETRESGID", 58, "cred", "setresgid."],
  ["PRIV_SEEOTHERGIDS", 59, "cred", "Exempt bsd.seeothergids."],
  ["PRIV_SEEOTHERUIDS", 60, "cred", "Exempt bsd.seeotheruids."],
  ["PRIV_SEEJAILPROC", 61, "cred", "Exempt from bsd.see_jail_proc."],
  ["PRIV_CRED_SETCRED", 62, "cred", "setcred."],
  ["PRIV_DEBUG_DIFFCRED", 80, "debug", "Exempt debugging other users."],
  ["PRIV_DEBUG_SUGID", 81, "debug", "Exempt debugging setuid proc."],
  ["PRIV_DEBUG_UNPRIV", 82, "debug", "Exempt unprivileged debug limit."],
  ["PRIV_DEBUG_DENIED", 83, "debug", "Exempt P2_NOTRACE."],
  ["PRIV_DEBUG_DIFFJAIL", 84, "debug", "Exempt debugging other jails."],
  ["PRIV_DTRACE_KERNEL", 90, "dtrace", "Allow use of DTrace on the kernel."],
  ["PRIV_DTRACE_PROC", 91, "dtrace", "Allow attaching DTrace to process."],
  ["PRIV_DTRACE_USER", 92, "dtrace", "Process may submit DTrace events."],
  ["PRIV_FIRMWARE_LOAD", 100, "firmware", "Can load firmware."],
  ["PRIV_JAIL_ATTACH", 110, "jail", "Attach to a jail."],
  ["PRIV_JAIL_SET", 111, "jail", "Set jail parameters."],
  ["PRIV_JAIL_REMOVE", 112, "jail", "Remove a jail."],
  ["PRIV_KENV_SET", 120, "kenv", "Set kernel env. variables."],
  ["PRIV_KENV_UNSET", 121, "kenv", "Unset kernel env. variables."],
  ["PRIV_KLD_LOAD", 130, "kld", "Load a kernel module."],
  ["PRIV_KLD_UNLOAD", 131, "kld", "Unload a kernel module."],
  ["PRIV_MAC_PARTITION", 140, "mac", "Privilege in mac_partition policy."],
  ["PRIV_MAC_PRIVS", 141, "mac", "Privilege in the mac_privs policy."],
  ["PRIV_PROC_LIMIT", 160, "proc", "Exceed user process limit."],
  ["PRIV_PROC_SETLOGIN", 161, "proc", "Can call setlogin."],
  ["PRIV_PROC_SETRLIMIT", 162, "proc", "Can raise resources limits."],
  ["PRIV_PROC_SETLOGINCLASS", 163, "proc", "Can call setloginclass(2)."],
  ["PRIV_IPC_READ", 170, "ipc", "Can override IPC read perm."],
  ["PRIV_IPC_WRITE", 171, "ipc", "Can override IPC write perm."],
  ["PRIV_IPC_ADMIN", 172, "ipc", "Can override IPC owner-only perm."],
  ["PRIV_IPC_MSGSIZE", 173, "ipc", "Exempt IPC message queue limit."],
  ["PRIV_MQ_ADMIN", 180, "mq", "Can override msgq owner-only perm."],
  ["PRIV_PMC_MANAGE", 190, "pmc", "Can administer PMC."],
  ["PRIV_PMC_SYSTEM", 191, "pmc", "Can allocate a system-wide PMC."],
  ["PRIV_SCHED_DIFFCRED", 200, "sched", "Exempt scheduling other users."],
  ["PRIV_SCHED_SETPRIORITY", 201, "sched", "Can set lower nice value for proc."],
  ["PRIV_SCHED_RTPRIO", 202, "sched", "Can set real time scheduling."],
  ["PRIV_SCHED_SETPOLICY", 203, "sched", "Can set scheduler policy."],
  ["PRIV_SCHED_SET", 204, "sched", "Can set thread scheduler."],
  ["PRIV_SCHED_SETPARAM", 205, "sched", "Can set thread scheduler params."],
  ["PRIV_SCHED_CPUSET", 206, "sched", "Can manipulate cpusets."],
  ["PRIV_SCHED_CPUSET_INTR", 207, "sched", "Can adjust IRQ to CPU binding."],
  ["PRIV_SCHED_IDPRIO", 208, "sched", "Can set idle time scheduling."],
  ["PRIV_SCHED_DIFFJAIL", 209, "sched", "Exempt scheduling other jails."],
  ["PRIV_SEM_WRITE", 220, "sem", "Can override sem write perm."],
  ["PRIV_SIGNAL_DIFFCRED", 230, "signal", "Exempt signalling other users."],
  ["PRIV_SIGNAL_SUGID", 231, "signal", "Non-conserv signal setuid proc."],
  ["PRIV_SIGNAL_DIFFJAIL", 232, "signal", "Exempt signalling other jails."],
  ["PRIV_SYSCTL_DEBUG", 240, "sysctl", "Can invoke sysctl.debug."],
  ["PRIV_SYSCTL_WRITE", 241, "sysctl", "Can write sysctls."],
  ["PRIV_SYSCTL_WRITEJAIL", 242, "sysctl", "Can write sysctls, jail permitted."],
  ["PRIV_SYSCTL_MEMLOCK", 243, "sysctl", "Large requests are not serialized."],
  ["PRIV_TTY_CONSOLE", 250, "tty", "Set console to tty."],
  ["PRIV_TTY_DRAINWAIT", 251, "tty", "Set tty drain wait time."],
  ["PRIV_TTY_DTRWAIT", 252, "tty", "Set DTR wait on tty."],
  ["PRIV_TTY_EXCLUSIVE", 253, "tty", "Override tty exclusive flag."],
  ["PRIV_TTY_STI", 255, "tty", "Simulate input on another tty."],
  ["PRIV_TTY_SETA", 256, "tty", "Set tty termios structure."],
  ["PRIV_UFS_EXTATTRCTL", 270, "ufs", "Can configure EAs on UFS1."],
  ["PRIV_UFS_QUOTAOFF", 271, "ufs", "quotaoff()."],
  ["PRIV_UFS_QUOTAON", 272, "ufs", "quotaon()."],
  ["PRIV_UFS_SETUSE", 273, "ufs", "setuse()."],
  ["PRIV_ZFS_POOL_CONFIG", 280, "zfs", "Can configure ZFS pools."],
  ["PRIV_ZFS_INJECT", 281, "zfs", "Can inject faults in the ZFS fault injection framework."],
  ["PRIV_ZFS_JAIL", 282, "zfs", "Can attach/detach ZFS file systems to/from jails."],
  ["PRIV_NFS_DAEMON", 290, "nfs", "Can become the NFS daemon."],
  ["PRIV_NFS_LOCKD", 291, "nfs", "Can become NFS lock daemon."],
  ["PRIV_VFS_READ", 310, "vfs", "Override vnode DAC read perm."],
  ["PRIV_VFS_WRITE", 311, "vfs", "Override vnode DAC write perm."],
  ["PRIV_VFS_ADMIN", 312, "vfs", "Override vnode DAC admin perm."],
  ["PRIV_VFS_EXEC", 313, "vfs", "Override vnode DAC exec perm."],
  ["PRIV_VFS_LOOKUP", 314, "vfs", "Override vnode DAC lookup perm."],
  ["PRIV_VFS_BLOCKRESERVE", 315, "vfs", "Can use free block reserve."],
  ["PRIV_VFS_CHFLAGS_DEV", 316, "vfs", "Can chflags() a device node."],
  ["PRIV_VFS_CHOWN", 317, "vfs", "Can set user; group to non-member."],
  ["PRIV_VFS_CHROOT", 318, "vfs", "chroot()."],
  ["PRIV_VFS_RETAINSUGID", 319, "vfs", "Can retain sugid bits on change."],
  ["PRIV_VFS_EXCEEDQUOTA", 320, "vfs", "Exempt from quota restrictions."],
  ["PRIV_VFS_EXTATTR_SYSTEM", 321, "vfs", "Operate on system EA namespace."],
  ["PRIV_VFS_FCHROOT", 322, "vfs", "fchroot()."],
  ["PRIV_VFS_FHOPEN", 323, "vfs", "Can fhopen()."],
  ["PRIV_VFS_FHSTAT", 324, "vfs", "Can fhstat()."],
  ["PRIV_VFS_FHSTATFS", 325, "vfs", "Can fhstatfs()."],
  ["PRIV_VFS_GENERATION", 326, "vfs", "stat() returns generation number."],
  ["PRIV_VFS_GETFH", 327, "vfs", "Can retrieve file handles."],
  ["PRIV_VFS_GETQUOTA", 328, "vfs", "getquota()."],
  ["PRIV_VFS_LINK", 329, "vfs", "bsd.hardlink_check_uid"],
  ["PRIV_VFS_MKNOD_BAD", 330, "vfs", "Was: mknod() can mark bad inodes."],
  ["PRIV_VFS_MKNOD_DEV", 331, "vfs", "Can mknod() to create dev nodes."],
  ["PRIV_VFS_MKNOD_WHT", 332, "vfs", "Can mknod() to create whiteout."],
  ["PRIV_VFS_MOUNT", 333, "vfs", "Can mount()."],
  ["PRIV_VFS_MOUNT_OWNER", 334, "vfs", "Can manage other users' file systems."],
  ["PRIV_VFS_MOUNT_EXPORTED", 335, "vfs", "Can set MNT_EXPORTED on mount."],
  ["PRIV_VFS_MOUNT_PERM", 336, "vfs", "Override dev node perms at mount."],
  ["PRIV_VFS_MOUNT_SUIDDIR", 337, "vfs", "Can set MNT_SUIDDIR on mount."],
  ["PRIV_VFS_MOUNT_NONUSER", 338, "vfs", "Can perform a non-user mount."],
  ["PRIV_VFS_SETGID", 339, "vfs", "Can setgid if not in group."],
  ["PRIV_VFS_SETQUOTA", 340, "vfs", "setquota()."],
  ["PRIV_VFS_STICKYFILE", 341, "vfs", "Can set sticky bit on file."],
  ["PRIV_VFS_SYSFLAGS", 342, "vfs", "Can modify system flags."],
  ["PRIV_VFS_UNMOUNT", 343, "vfs", "Can unmount()."],
  ["PRIV_VFS_STAT", 344, "vfs", "Override vnode MAC stat perm."],
  ["PRIV_VFS_READ_DIR", 345, "vfs", "Can read(2) a dirfd, needs sysctl."],
  ["PRIV_VM_MADV_PROTECT", 360, "vm", "Can set MADV_PROTECT."],
  ["PRIV_VM_MLOCK", 361, "vm", "Can mlock(), mlockall()."],
  ["PRIV_VM_MUNLOCK", 362, "vm", "Can munlock(), munlockall()."],
  ["PRIV_VM_SWAP_NOQUOTA", 363, "vm", "Can override the global swap reservation limits."],
  ["PRIV_VM_SWAP_NORLIMIT", 364, "vm", "Can override the per-uid swap reservation limits."],
  ["PRIV_DEVFS_RULE", 370, "devfs", "Can manage devfs rules."],
  ["PRIV_DEVFS_SYMLINK", 371, "devfs", "Can create symlinks in devfs."],
  ["PRIV_RANDOM_RESEED", 380, "random", "Closing /dev/random reseeds."],
  ["PRIV_NET_BRIDGE", 390, "net", "Administer bridge."],
  ["PRIV_NET_GRE", 391, "net", "Administer GRE."],
  ["PRIV_NET_BPF", 394, "net", "Monitor BPF."],
  ["PRIV_NET_RAW", 395, "net", "Open raw socket."],
  ["PRIV_NET_ROUTE", 396, "net", "Administer routing."],
  ["PRIV_NET_TAP", 397, "net", "Can open tap device."],
  ["PRIV_NET_SETIFMTU", 398, "net", "Set interface MTU."],
  ["PRIV_NET_SETIFFLAGS", 399, "net", "Set interface flags."],
  ["PRIV_NET_SETIFCAP", 400, "net", "Set interface capabilities."],
  ["PRIV_NET_SETIFNAME", 401, "net", "Set interface name."],
  ["PRIV_NET_SETIFMETRIC", 402, "net", "Set interface metrics."],
  ["PRIV_NET_SETIFPHYS", 403, "net", "Set interface physical layer prop."],
  ["PRIV_NET_SETIFMAC", 404, "net", "Set interface MAC label."],
  ["PRIV_NET_ADDMULTI", 405, "net", "Add multicast addr. to ifnet."],
  ["PRIV_NET_DELMULTI", 406, "net", "Delete multicast addr. from ifnet."],
  ["PRIV_NET_HWIOCTL", 407, "net", "Issue hardware ioctl on ifnet."],
  ["PRIV_NET_SETLLADDR", 408, "net", "Set interface link-level address."],
  ["PRIV_NET_ADDIFGROUP", 409, "net", "Add new interface group."],
  ["PRIV_NET_DELIFGROUP", 410, "net", "Delete interface group."],
  ["PRIV_NET_IFCREATE", 411, "net", "Create cloned interface."],
  ["PRIV_NET_IFDESTROY", 412, "net", "Destroy cloned interface."],
  ["PRIV_NET_ADDIFADDR", 413, "net", "Add protocol addr to interface."],
  ["PRIV_NET_DELIFADDR", 414, "net", "Delete protocol addr on interface."],
  ["PRIV_NET_LAGG", 415, "net", "Administer lagg interface."],
  ["PRIV_NET_GIF", 416, "net", "Administer gif interface."],
  ["PRIV_NET_SETIFVNET", 417, "net", "Move interface to vnet."],
  ["PRIV_NET_SETIFDESCR", 418, "net", "Set interface description."],
  ["PRIV_NET_SETIFFIB", 419, "net", "Set interface fib."],
  ["PRIV_NET_VXLAN", 420, "net", "Administer vxlan."],
  ["PRIV_NET_SETLANPCP", 421, "net", "Set LAN priority."],
  ["PRIV_NET_OVPN", 422, "net", "Administer OpenVPN DCO."],
  ["PRIV_NET_ME", 423, "net", "Administer ME interface."],
  ["PRIV_NET_WG", 424, "net", "Administer WireGuard interface."],
  ["PRIV_NET_GENEVE", 425, "net", "Administer geneve."],
  ["PRIV_NET80211_VAP_GETKEY", 440, "net80211", "Query VAP 802.11 keys."],
  ["PRIV_NET80211_VAP_MANAGE", 441, "net80211", "Administer 802.11 VAP"],
  ["PRIV_NET80211_VAP_SETMAC", 442, "net80211", "Set VAP MAC address"],
  ["PRIV_NET80211_CREATE_VAP", 443, "net80211", "Create a new VAP"],
  ["PRIV_NETATM_CFG", 460, "netatm", ""],
  ["PRIV_NETATM_ADD", 461, "netatm", ""],
  ["PRIV_NETATM_DEL", 462, "netatm", ""],
  ["PRIV_NETATM_SET", 463, "netatm", ""],
  ["PRIV_NETBLUETOOTH_RAW", 470, "netbluetooth", "Open raw bluetooth socket."],
  ["PRIV_NETGRAPH_CONTROL", 480, "netgraph", "Open netgraph control socket."],
  ["PRIV_NETGRAPH_TTY", 481, "netgraph", "Configure tty for netgraph."],
  ["PRIV_NETINET_RESERVEDPORT", 490, "netinet", "Bind low port number."],
  ["PRIV_NETINET_IPFW", 491, "netinet", "Administer IPFW firewall."],
  ["PRIV_NETINET_DIVERT", 492, "netinet", "Open IP divert socket."],
  ["PRIV_NETINET_PF", 493, "netinet", "Administer pf firewall."],
  ["PRIV_NETINET_DUMMYNET", 494, "netinet", "Administer DUMMYNET."],
  ["PRIV_NETINET_CARP", 495, "netinet", "Administer CARP."],
  ["PRIV_NETINET_MROUTE", 496, "netinet", "Administer multicast routing."],
  ["PRIV_NETINET_RAW", 497, "netinet", "Open netinet raw socket."],
  ["PRIV_NETINET_GETCRED", 498, "netinet", "Query netinet pcb credentials."],
  ["PRIV_NETINET_ADDRCTRL6", 499, "netinet", "Administer IPv6 address scopes."],
  ["PRIV_NETINET_ND6", 500, "netinet", "Administer IPv6 neighbor disc."],
  ["PRIV_NETINET_SCOPE6", 501, "netinet", "Administer IPv6 address scopes."],
  ["PRIV_NETINET_ALIFETIME6", 502, "netinet", "Administer IPv6 address lifetimes."],
  ["PRIV_NETINET_IPSEC", 503, "netinet", "Administer IPSEC."],
  ["PRIV_NETINET_REUSEPORT", 504, "netinet", "Allow [rapid] port/address reuse."],
  ["PRIV_NETINET_SETHDROPTS", 505, "netinet", "Set certain IPv4/6 header options."],
  ["PRIV_NETINET_BINDANY", 506, "netinet", "Allow bind to any address."],
  ["PRIV_NETINET_HASHKEY", 507, "netinet", "Get and set hash keys for IPv4/6."],
  ["PRIV_NETINET_KTLSKEYS", 508, "netinet", "Read ktls session keys."],
  ["PRIV_NETNCP", 530, "netncp", "Use another user's connection."],
  ["PRIV_NETSMB", 540, "netsmb", "Use another user's connection."],
  ["PRIV_VM86_INTCALL", 550, "vm86", "Allow invoking vm86 int handlers."],
  ["PRIV_PIPEBUF", 560, "base", "Allow to allocate reserved pipebuf space"],
  ["PRIV_DDB_CAPTURE", 620, "ddb", "Allow reading of DDB capture log."],
  ["PRIV_NNPFS_DEBUG", 630, "nnpfs", "Perforn ARLA_VIOC_NNPFSDEBUG. [sic]"],
  ["PRIV_CPUCTL_WRMSR", 640, "cpuctl", "Write model-specific register."],
  ["PRIV_CPUCTL_UPDATE", 641, "cpuctl", "Update cpu microcode."],
  ["PRIV_C4B_RESET_CTLR", 650, "c4b", "Load firmware, reset controller."],
  ["PRIV_C4B_TRACE", 651, "c4b", "Unrestricted CAPI message tracing."],
  ["PRIV_AFS_ADMIN", 660, "afs", "Can change AFS client settings."],
  ["PRIV_AFS_DAEMON", 661, "afs", "Can become the AFS daemon."],
  ["PRIV_RCTL_GET_RACCT", 670, "rctl", ""],
  ["PRIV_RCTL_GET_RULES", 671, "rctl", ""],
  ["PRIV_RCTL_GET_LIMITS", 672, "rctl", ""],
  ["PRIV_RCTL_ADD_RULE", 673, "rctl", ""],
  ["PRIV_RCTL_REMOVE_RULE", 674, "rctl", ""],
  ["PRIV_KMEM_READ", 680, "kmem", "Open mem/kmem for reading."],
  ["PRIV_KMEM_WRITE", 681, "kmem", "Open mem/kmem for writing."],
  ["PRIV_PROC_MEM_WRITE", 682, "kmem", "Writes via proc_rwmem"],
  ["PRIV_KDB_SET_BACKEND", 690, "kdb", "Allow setting KDB backend."],
  ["PRIV_VERIEXEC_DIRECT", 700, "veriexec", "Can override 'indirect'"],
  ["PRIV_VERIEXEC_NOVERIFY", 701, "veriexec", "Can override O_VERIFY"],
  ["PRIV_VERIEXEC_CONTROL", 702, "veriexec", "Can configure veriexec"],
  ["PRIV_VMM_PPTDEV", 710, "vmm", "Can manipulate ppt devices."],
  ["PRIV_VMM_CREATE", 711, "vmm", "Can create non-temporal VMs."],
  ["PRIV_VMM_DESTROY", 712, "vmm", "Can destroy other users' VMs."],
];

/** Aliases in priv.h: alias → canonical name. */
export const PRIVILEGE_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  PRIV_NET_SETVLANPCP: 'PRIV_NET_SETLANPCP',
});

/**
 * Privileges whose Linux operations capulator traps precisely (the operations the classifier
 * recognises). Everything else is untrappable and gets a note below or the default note.
 */
const TRAPPABLE = new Set<string>([
  'PRIV_VFS_MKNOD_DEV',
  'PRIV_CRED_SETUID', 'PRIV_CRED_SETEUID', 'PRIV_CRED_SETREUID', 'PRIV_CRED_SETRESUID',
  'PRIV_CRED_SETGID', 'PRIV_CRED_SETEGID', 'PRIV_CRED_SETREGID', 'PRIV_CRED_SETRESGID', 'PRIV_CRED_SETGROUPS',
  'PRIV_NETINET_RAW', 'PRIV_NET_RAW', 'PRIV_NETINET_RESERVEDPORT',
  'PRIV_NETINET_BINDANY', 'PRIV_NETINET_SETHDROPTS', 'PRIV_NETINET_MROUTE', 'PRIV_NETINET_IPSEC',
  'PRIV_VFS_CHOWN', 'PRIV_VFS_CHROOT', 'PRIV_VFS_MOUNT', 'PRIV_VFS_UNMOUNT',
  'PRIV_SYSCTL_WRITE',
  'PRIV_CLOCK_SETTIME', 'PRIV_SETTIMEOFDAY', 'PRIV_ADJTIME', 'PRIV_NTP_ADJTIME',
  'PRIV_REBOOT', 'PRIV_SIGNAL_DIFFCRED',
  'PRIV_SCHED_SETPRIORITY', 'PRIV_SCHED_SETPOLICY', 'PRIV_SCHED_SETPARAM', 'PRIV_SCHED_DIFFCRED', 'PRIV_SCHED_CPUSET',
  'PRIV_PROC_SETRLIMIT', 'PRIV_DEBUG_DIFFCRED', 'PRIV_DEBUG_DENIED', 'PRIV_KLD_LOAD', 'PRIV_KLD_UNLOAD',
  'PRIV_NET_SETIFFLAGS', 'PRIV_NET_SETIFMTU', 'PRIV_NET_SETIFNAME', 'PRIV_NET_SETIFMETRIC', 'PRIV_NET_SETIFPHYS',
  'PRIV_NET_SETLLADDR', 'PRIV_NET_ADDIFADDR', 'PRIV_NET_DELIFADDR', 'PRIV_NET_ADDMULTI', 'PRIV_NET_DELMULTI',
  'PRIV_NET_HWIOCTL', 'PRIV_NET_BRIDGE', 'PRIV_NET_LAGG', 'PRIV_NET_IFCREATE',
  'PRIV_SWAPON', 'PRIV_SWAPOFF', 'PRIV_ACCT', 'PRIV_IO', 'PRIV_MSGBUF',
]);

const UNTRAPPED_NOTES: Readonly<Record<string, string>> = {
  PRIV_VFS_READ: 'DAC override checked inside path lookup and open (CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH); no syscall shows it.',
  PRIV_VFS_WRITE: 'DAC override checked inside open/path lookup (CAP_DAC_OVERRIDE); no syscall shows it.',
  PRIV_VFS_EXEC: 'DAC override checked inside execve/path lookup (CAP_DAC_OVERRIDE); no syscall shows it.',
  PRIV_VFS_LOOKUP: 'Directory search override checked inside path lookup; no syscall shows it.',
  PRIV_VFS_ADMIN: 'Owner override (CAP_FOWNER) checked inside chmod/utimes/setxattr/unlink against the inode owner; the agent does not see the inode.',
  PRIV_NET_ROUTE: 'Routing changes go over rtnetlink (CAP_NET_ADMIN checked per message); only the legacy SIOCADDRT/SIOCDELRT ioctls are trapped.',
  PRIV_NET_SETIFMAC: 'mac(4) interface labels have no Linux operation.',
  PRIV_NETINET_IPFW: 'Firewall changes go over nftables netlink or iptables setsockopt payloads, not decoded.',
  PRIV_NETINET_PF: 'Firewall changes go over nftables netlink or iptables setsockopt payloads, not decoded.',
  PRIV_NETINET_DUMMYNET: 'Traffic control goes over rtnetlink.',
  PRIV_SYSCTL_DEBUG: 'Linux sysctl writes are /proc/sys file writes, checked by file permissions.',
  PRIV_SYSCTL_WRITEJAIL: 'Linux sysctl writes are /proc/sys file writes, checked by file permissions.',
  PRIV_IPC_READ: 'ipcperm() override is checked inside msgrcv/semop/shmat against the object; not decoded.',
  PRIV_IPC_WRITE: 'ipcperm() override is checked inside msgsnd/semop/shmat against the object; not decoded.',
  PRIV_VM_MLOCK: 'mlock is bounded by RLIMIT_MEMLOCK; CAP_IPC_LOCK bypasses the limit inside mm code; not trapped.',
  PRIV_VM_MUNLOCK: 'munlock never needs privilege on Linux.',
};
const DEFAULT_NOTE = 'No syscall capulator traps decides this privilege precisely (checked deep in the kernel, via netlink, /proc or /sys files, or with no Linux counterpart).';

/** capulator's Linux-only pseudo-privileges (section "linux"). */
const PSEUDO_ROWS: ReadonlyArray<readonly [string, number, boolean, string]> = [
  ['PRIV_LINUX_SETPCAP', 100000, true, 'CAP_SETPCAP: add to the inheritable set beyond the bounding/permitted sets, drop bounding-set bits (PR_CAPBSET_DROP), change securebits (PR_SET_SECUREBITS).'],
  ['PRIV_LINUX_NET_BROADCAST', 100001, false, 'CAP_NET_BROADCAST: nominal; the kernel hardly checks it.'],
  ['PRIV_LINUX_LEASE', 100002, false, 'CAP_LEASE: fcntl(F_SETLEASE) on a file one does not own.'],
  ['PRIV_LINUX_SETFCAP', 100003, false, 'CAP_SETFCAP: set the security.capability xattr; map uid 0 in a user namespace.'],
  ['PRIV_LINUX_WAKE_ALARM', 100004, true, 'CAP_WAKE_ALARM: timer_create/timerfd_create on CLOCK_REALTIME_ALARM/CLOCK_BOOTTIME_ALARM.'],
  ['PRIV_LINUX_BLOCK_SUSPEND', 100005, false, 'CAP_BLOCK_SUSPEND: EPOLLWAKEUP, /proc/sys/wake_lock.'],
  ['PRIV_LINUX_AUDIT_READ', 100006, false, 'CAP_AUDIT_READ: read the audit log over multicast netlink.'],
  ['PRIV_LINUX_BPF', 100007, false, 'CAP_BPF: privileged bpf(2) program and map operations.'],
  ['PRIV_LINUX_CHECKPOINT_RESTORE', 100008, false, 'CAP_CHECKPOINT_RESTORE: clone3 set_tid, ns_last_pid, /proc/PID/map_files.'],
  ['PRIV_LINUX_SO_MARK', 100009, true, 'setsockopt(SOL_SOCKET, SO_MARK): needs CAP_NET_RAW or CAP_NET_ADMIN (net/core/sock.c).'],
  ['PRIV_LINUX_SO_PRIORITY', 100010, true, 'setsockopt(SOL_SOCKET, SO_PRIORITY) outside 0..6: needs CAP_NET_RAW or CAP_NET_ADMIN.'],
  ['PRIV_LINUX_SO_BINDTODEVICE', 100011, true, 'setsockopt(SOL_SOCKET, SO_BINDTODEVICE) on a socket already bound to a device: needs CAP_NET_RAW (unprivileged otherwise since Linux 5.7).'],
  ['PRIV_LINUX_SO_DEBUG', 100012, true, 'setsockopt(SOL_SOCKET, SO_DEBUG) to a non-zero value: needs CAP_NET_ADMIN.'],
  ['PRIV_LINUX_SOCKBUF_FORCE', 100013, true, 'setsockopt(SOL_SOCKET, SO_SNDBUFFORCE/SO_RCVBUFFORCE): needs CAP_NET_ADMIN.'],
  ['PRIV_LINUX_TCP_REPAIR', 100014, true, 'setsockopt(IPPROTO_TCP, TCP_REPAIR*): needs CAP_NET_ADMIN.'],
];

function build(): Privilege[] {
  const out: Privilege[] = [];
  for (const [name, number, section, comment] of FREEBSD_ROWS) {
    const trappable = TRAPPABLE.has(name);
    const p: Privilege = { name, number, section, trappable, comment };
    if (!trappable) p.untrappedNote = UNTRAPPED_NOTES[name] ?? DEFAULT_NOTE;
    out.push(Object.freeze(p));
  }
  for (const [name, number, trappable, comment] of PSEUDO_ROWS) {
    const p: Privilege = { name, number, section: 'linux', trappable, comment, pseudo: true };
    if (!trappable) p.untrappedNote = 'capulator does not trap the operations of this capability.';
    out.push(Object.freeze(p));
  }
  return out;
}

/** Active FreeBSD privileges (priv.h order), then capulator's pseudo-privileges. */
export const PRIVILEGES: readonly Privilege[] = Object.freeze(build());

/** FreeBSD privileges only (no pseudo-privileges). */
export const FREEBSD_PRIVILEGES: readonly Privilege[] = Object.freeze(PRIVILEGES.filter((p) => !p.pseudo));

const byName = new Map(PRIVILEGES.map((p) => [p.name, p]));
const byNumber = new Map(PRIVILEGES.map((p) => [p.number, p]));

/** Looks up a privilege by name (case-insensitive; aliases resolve to their canonical entry). */
export function privilegeByName(name: string): Privilege | undefined {
  const n = name.toUpperCase();
  return byName.get(n) ?? byName.get(PRIVILEGE_ALIASES[n] ?? '');
}

export function privilegeByNumber(n: number): Privilege | undefined {
  return byNumber.get(n);
}
