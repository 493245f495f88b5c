extension Duration {
    /// Whole milliseconds (for logs, backoff arithmetic and command lines).
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
