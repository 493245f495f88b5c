import Distributed
import Synchronization

/// One distributed method exposed under a stable wire name.
///
/// `invoke` calls the method once with default-valued arguments; the system runs it against a
/// recording proxy (nothing is sent) to learn the method's compiled identifier and arity. This
/// ties the stable name to the method through the type checker instead of by hand-written
/// mangled names.
public struct WireMethod<Act: DistributedActor>: Sendable where Act.ActorSystem == ClusterSystem {
    public let name: String
    let invoke: @Sendable (Act) async throws -> Void

    /// - Parameters:
    ///   - name: Stable name on the wire, conventionally `"Type.method"` (e.g. `"Sampler.sample"`).
    ///   - invoke: Calls the method with any arguments, e.g. `{ _ = try await $0.sample(.init()) }`.
    public init(_ name: String, _ invoke: @escaping @Sendable (Act) async throws -> Void) {
        self.name = name
        self.invoke = invoke
    }
}

/// A distributed actor whose methods can be called across nodes: it lists them with their
/// stable wire names. Register the type on every node that calls or hosts it with
/// ``ClusterSystem/register(_:)``.
public protocol ClusterCallable: DistributedActor where ActorSystem == ClusterSystem {
    static var wireMethods: [WireMethod<Self>] { get }
}

/// Two-way map between stable wire names and the compiled identifiers of distributed methods.
///
/// Thread-safety: a `Mutex` guards the tables; lookups are cheap and lock-scoped.
final class MethodRegistry: Sendable {
    struct Entry: Sendable {
        var name: String
        var identifier: String
        var arity: Int
    }

    private struct Tables {
        var byName: [String: Entry] = [:]
        var byIdentifier: [String: Entry] = [:]
    }

    private let tables = Mutex(Tables())

    func add(_ entry: Entry) throws(ClusterError) {
        try tables.withLock { tables throws(ClusterError) in
            if let existing = tables.byName[entry.name], existing.identifier != entry.identifier {
                throw ClusterError(.configuration, "wire name '\(entry.name)' is already used by another method")
            }
            if let existing = tables.byIdentifier[entry.identifier], existing.name != entry.name {
                throw ClusterError(.configuration, "method registered as '\(existing.name)' cannot also be '\(entry.name)'")
            }
            tables.byName[entry.name] = entry
            tables.byIdentifier[entry.identifier] = entry
        }
    }

    func entry(named name: String) -> Entry? {
        tables.withLock { $0.byName[name] }
    }

    func entry(identifier: String) -> Entry? {
        tables.withLock { $0.byIdentifier[identifier] }
    }
}

/// Task-local state of a registration: while set, a remote call records its target instead of
/// sending anything.
final class MethodRecording: Sendable {
    struct Recorded: Sendable {
        var identifier: String
        var arity: Int
    }

    @TaskLocal static var current: MethodRecording?

    let recorded = Mutex<Recorded?>(nil)

    /// Thrown by the recording remote call to stop the invocation once the target is known.
    struct Done: Error {}
}
