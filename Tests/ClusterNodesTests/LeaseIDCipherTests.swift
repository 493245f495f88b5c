@testable import ClusterNodes
import Testing

/// Lease ids as samplers see them: a permutation (every id decodes back, no two collide) that
/// does not reveal the next id, and differs between coordinators (restarts).
@Suite("Lease id cipher")
struct LeaseIDCipherTests {
    @Test func idsRoundTripAndAreNeitherSequentialNorShared() {
        let cipher = LeaseIDCipher()
        let ledgerIDs: [UInt64] = Array(1 ... 5000) + [1 << 40, (1 << 40) + 1, .max, 0]
        let wire = ledgerIDs.map(cipher.encode)
        #expect(ledgerIDs.map { cipher.decode(cipher.encode($0)) } == ledgerIDs)
        #expect(Set(wire).count == ledgerIDs.count)
        // Consecutive ledger ids give unrelated wire ids: no constant step to guess the next.
        let steps = Set(zip(wire, wire.dropFirst()).prefix(4999).map { $0.1 &- $0.0 })
        #expect(steps.count > 4900)
        // Another coordinator (a restart) draws another key.
        let other = LeaseIDCipher()
        #expect(ledgerIDs.prefix(100).map(other.encode) != Array(wire.prefix(100)))
    }
}
