/// Turns the ledger's sequential lease ids into the ids samplers see, and back: a keyed
/// permutation of 64-bit numbers (a 4-round Feistel network whose round function is SipHash,
/// Swift's `Hasher`, keyed per process and per cipher). Seeing some leases' ids tells nothing
/// about the next one's, so a sampler cannot guess a lease it was not granted; the ledger keeps
/// its ordered ids (expiry and loss are handled in id order, deterministically).
struct LeaseIDCipher: Sendable {
    private let keys: [UInt64]

    /// A cipher with a fresh random key (a restarted coordinator draws another: ids of the old
    /// one's leases then decode to ids the ledger does not know, and are dropped as such).
    init() {
        var generator = SystemRandomNumberGenerator()
        keys = (0 ..< 4).map { _ in generator.next() }
    }

    /// The id samplers see for ledger id `id`.
    func encode(_ id: UInt64) -> UInt64 {
        var (left, right) = (UInt32(truncatingIfNeeded: id >> 32), UInt32(truncatingIfNeeded: id))
        for key in keys {
            (left, right) = (right, left ^ round(key, right))
        }
        return UInt64(left) << 32 | UInt64(right)
    }

    /// The ledger id of a sampler's lease id (``encode(_:)`` undone).
    func decode(_ id: UInt64) -> UInt64 {
        var (left, right) = (UInt32(truncatingIfNeeded: id >> 32), UInt32(truncatingIfNeeded: id))
        for key in keys.reversed() {
            (left, right) = (right ^ round(key, left), left)
        }
        return UInt64(left) << 32 | UInt64(right)
    }

    private func round(_ key: UInt64, _ half: UInt32) -> UInt32 {
        var hasher = Hasher()
        hasher.combine(key)
        hasher.combine(half)
        return UInt32(truncatingIfNeeded: hasher.finalize())
    }
}
