namespace Migration.Actors.Node;

/// <summary>
/// The channel listener's bounded set of pending (not yet authenticated) handshakes. Each accepted connection takes a
/// slot at once, on the accept path; when all slots are taken, the OLDEST pending handshake is evicted (its token
/// cancelled, so its connection is closed) to make room, instead of turning the new connection away. A source that
/// holds a live migration's token answers the challenge within a round trip, so it is never the oldest for long:
/// idle or slow connections, however many, can only evict each other, never keep a legitimate channel out. A slot is
/// also bounded in time (handshake-timeout) and freed by the handshake task itself when the hello has been read or the
/// handshake failed, never by a message queued behind other accepts.
/// Thread-safe (one lock): used by the accept loop and the handshake tasks, never by actor state.
/// </summary>
public sealed class HandshakeSlots
{
    private readonly object _gate = new();
    private readonly LinkedList<Slot> _pending = new();
    private readonly int _capacity;
    private long _evicted;

    public HandshakeSlots(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
    }

    /// <summary>Handshakes pending now.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>Handshakes evicted so far to make room for newer connections.</summary>
    public long Evicted => Interlocked.Read(ref _evicted);

    /// <summary>
    /// A slot for a new connection whose token is cancelled after <paramref name="timeout"/>, on eviction, or with
    /// <paramref name="stopping"/>. The caller owns the slot and disposes it when the handshake ends.
    /// </summary>
    public Slot Take(TimeSpan timeout, CancellationToken stopping)
    {
        var slot = new Slot(this, CancellationTokenSource.CreateLinkedTokenSource(stopping));
        slot.Cts.CancelAfter(timeout);
        Slot? evict = null;
        lock (_gate)
        {
            if (_pending.Count >= _capacity)
            {
                evict = _pending.First!.Value;
                Remove(evict);
            }

            slot.Node = _pending.AddLast(slot);
        }

        if (evict is not null)
        {
            Interlocked.Increment(ref _evicted);
            evict.Evict();
        }

        return slot;
    }

    private void Remove(Slot slot)
    {
        // under _gate
        if (slot.Node is { } node)
        {
            _pending.Remove(node);
            slot.Node = null;
        }
    }

    /// <summary>One pending handshake. Dispose is idempotent and frees the slot.</summary>
    public sealed class Slot : IDisposable
    {
        private readonly HandshakeSlots _owner;
        private int _disposed;

        internal Slot(HandshakeSlots owner, CancellationTokenSource cts)
        {
            _owner = owner;
            Cts = cts;
        }

        internal CancellationTokenSource Cts { get; }

        internal LinkedListNode<Slot>? Node { get; set; }

        /// <summary>Cancelled on timeout, eviction or listener stop.</summary>
        public CancellationToken Token => Cts.Token;

        /// <summary>True once this handshake was evicted for a newer connection.</summary>
        public bool WasEvicted { get; private set; }

        internal void Evict()
        {
            WasEvicted = true;
            try
            {
                Cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // the handshake ended meanwhile
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1)
            {
                return;
            }

            lock (_owner._gate)
            {
                _owner.Remove(this);
            }

            Cts.Dispose();
        }
    }
}
