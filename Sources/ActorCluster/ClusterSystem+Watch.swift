import Distributed
import Synchronization

extension ClusterSystem {
    /// Returns once the actor is known to be gone: a local actor deinitialised, a remote one
    /// withdrawn from the receptionist by its node, or its node declared down or restarted.
    /// Returns at once if that is already known. Cancelling the waiting task ends the wait.
    public func terminated(_ id: ClusterActorID) async {
        let token = state.withLock { $0.makeToken() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let gone = state.withLock { state -> Bool in
                    if state.isShutDown || isKnownGone(id, state: state) { return true }
                    state.watchers[id, default: [:]][token] = continuation
                    return false
                }
                if gone { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.watchers[id]?.removeValue(forKey: token) }
            waiter?.resume()
        }
    }

    private func isKnownGone(_ id: ClusterActorID, state: SystemState) -> Bool {
        if id.node == identity {
            return state.localActors[id.name]?.actor == nil && !state.reservedNames.contains(id.name)
        }
        if state.departed.contains(id) { return true }
        guard let peer = state.peers[id.node.endpoint], let remote = peer.remote else {
            return state.departedNodes.contains(id.node)
        }
        if remote.incarnation != id.node.incarnation { return peer.status == .up || state.departedNodes.contains(id.node) }
        return peer.status == .down
    }

    /// Resumes everyone waiting on `id`. Called with the lock held.
    func fireWatchers(of id: ClusterActorID, state: inout SystemState, effects: inout Effects) {
        guard let waiters = state.watchers.removeValue(forKey: id) else { return }
        for (_, waiter) in waiters {
            effects.add { waiter.resume() }
        }
    }
}
