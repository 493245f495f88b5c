import Wire
import ActorCluster
import Distributed
import Testing

@Suite("Receptionist")
struct ReceptionistTests {
    @Test(.timeLimit(.minutes(1)))
    func listingFollowsNodesJoiningAndLeaving() async throws {
        let (observer, observerActor) = try await startNode("observer")
        var others: [ClusterSystem] = []
        do {
            let listing = observer.receptionist.listing(DiagnosticsActor.key)
            var iterator = listing.makeAsyncIterator()
            var current = try #require(await iterator.next())
            #expect(current.map(\.id) == [observerActor.id])

            let (first, firstActor) = try await startNode("first")
            others.append(first)
            try await first.join(observer.identity.endpoint)
            while !Set(current.map(\.id)).contains(firstActor.id) {
                current = try #require(await iterator.next())
            }

            let (second, secondActor) = try await startNode("second")
            others.append(second)
            try await second.join(observer.identity.endpoint)
            while !Set(current.map(\.id)).isSuperset(of: [firstActor.id, secondActor.id]) {
                current = try #require(await iterator.next())
            }
            #expect(observer.receptionist.lookup(DiagnosticsActor.key).count == 3)

            // The joiner sees the observer's registration too.
            try await eventually("first node lists the observer") {
                first.receptionist.lookup(DiagnosticsActor.key).contains { $0.id == observerActor.id }
            }

            // Leaving: a clean shutdown withdraws the node's registrations at once.
            await first.shutdown()
            while Set(current.map(\.id)).contains(firstActor.id) {
                current = try #require(await iterator.next())
            }
            #expect(Set(current.map(\.id)) == [observerActor.id, secondActor.id])

            // A remote actor that goes away is withdrawn too.
            let extra = DiagnosticsActor(actorSystem: second)
            try second.receptionist.checkIn(extra, with: DiagnosticsActor.key)
            let extraID = extra.id
            while !Set(current.map(\.id)).contains(extraID) {
                current = try #require(await iterator.next())
            }
            let watching = Task { await observer.terminated(extraID) }
            withExtendedLifetime(extra) {}
            _ = consume extra
            while Set(current.map(\.id)).contains(extraID) {
                current = try #require(await iterator.next())
            }
            await watching.value
            withExtendedLifetime(secondActor) {}
        } catch {
            for node in others { await node.shutdown() }
            await observer.shutdown()
            throw error
        }
        for node in others { await node.shutdown() }
        await observer.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func onlyLocalActorsCanCheckIn() async throws {
        try await withNodes(2) { nodes in
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            #expect(throws: ClusterError.self) {
                try nodes[0].system.receptionist.checkIn(remote, with: DiagnosticsActor.key)
            }
        }
    }
}
