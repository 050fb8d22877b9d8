// The handler the multi-node scenario's services run: does nothing, so the figure is the scheduler's.
export default { 'bench-noop': () => {} };
