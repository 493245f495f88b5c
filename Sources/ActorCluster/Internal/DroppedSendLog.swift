/// Rate limit for the warning about messages dropped because a peer does not read (its queue
/// at the high-water mark): the first drop to a peer is logged at once, later ones at most
/// every ``interval`` with the count since. Bounded: peers quiet for a minute are forgotten.
struct DroppedSendLog {
    static let interval: Duration = .seconds(5)
    private var peers: [String: (lastLogged: ContinuousClock.Instant, unlogged: Int)] = [:]

    /// Notes one dropped message to `peer`.
    /// - Returns: The number of drops to report now, or nil to stay quiet.
    mutating func noteDrop(to peer: String, now: ContinuousClock.Instant = .now) -> Int? {
        if peers.count > 1024 {
            peers = peers.filter { now - $0.value.lastLogged < .seconds(60) }
        }
        guard var entry = peers[peer] else {
            peers[peer] = (now, 0)
            return 1
        }
        entry.unlogged += 1
        if now - entry.lastLogged >= Self.interval {
            let count = entry.unlogged
            peers[peer] = (now, 0)
            return count
        }
        peers[peer] = entry
        return nil
    }
}
