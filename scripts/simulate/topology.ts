// Who is whose neighbour. A neighbour pair is one libp2p connection with a have stream both
// ways, so the graph is undirected: if a is b's neighbour, b is a's.
//
// The graph: every node wants `degree` neighbours (the gateway `gatewayDegree`), chosen
// uniformly at random among nodes that still have room — a random near-regular graph, the
// shape a fleet takes when edges dial random peers (mDNS, the DHT) up to a neighbour cap.
// The gateway is one of them: about `gatewayDegree` edges have it as a neighbour, the rest
// reach its chunks only through other edges. When every node fits (N-1 ≤ degree) the graph
// is complete. A graph that came out disconnected (rare at degree ≥ 3) gets one extra link
// per stray component, to a random node already reachable from the gateway.

export interface Topology {
  /** neighbours[i]: node i's neighbours, ascending. Node 0 is the gateway. */
  neighbours: number[][]
  minDegree: number
  maxDegree: number
  meanDegree: number
  /** Links added only to connect the graph. */
  bridges: number
}

export function buildTopology (nodes: number, degree: number, gatewayDegree: number, random: () => number): Topology {
  if (nodes < 2) throw new RangeError('a swarm needs a gateway and at least one edge')
  const adjacency: Array<Set<number>> = Array.from({ length: nodes }, () => new Set<number>())
  const target = (node: number): number => Math.min(nodes - 1, node === 0 ? gatewayDegree : degree)
  const link = (a: number, b: number): void => {
    adjacency[a]?.add(b)
    adjacency[b]?.add(a)
  }

  if (degree >= nodes - 1 && gatewayDegree >= nodes - 1) {
    for (let a = 0; a < nodes; a++) for (let b = a + 1; b < nodes; b++) link(a, b)
  } else {
    // Nodes with room for another neighbour; removal by swapping with the last.
    const open: number[] = []
    const slot = new Int32Array(nodes).fill(-1)
    const openNode = (node: number): void => {
      slot[node] = open.length
      open.push(node)
    }
    const closeNode = (node: number): void => {
      const at = slot[node] as number
      if (at < 0) return
      const last = open.pop() as number
      if (last !== node) {
        open[at] = last
        slot[last] = at
      }
      slot[node] = -1
    }
    for (let node = 0; node < nodes; node++) if (target(node) > 0) openNode(node)
    const order = shuffled(nodes, random)
    const MAX_TRIES = 64
    for (const node of order) {
      const mine = adjacency[node] as Set<number>
      let tries = 0
      while (mine.size < target(node) && tries < MAX_TRIES && open.length > 1) {
        const other = open[Math.floor(random() * open.length)] as number
        if (other === node || mine.has(other)) {
          tries++
          continue
        }
        link(node, other)
        if ((adjacency[other] as Set<number>).size >= target(other)) closeNode(other)
      }
      closeNode(node)
    }
  }

  const bridges = connect(adjacency, random)
  const neighbours = adjacency.map(set => [...set].sort((a, b) => a - b))
  let minDegree = Infinity
  let maxDegree = 0
  let total = 0
  for (const list of neighbours) {
    minDegree = Math.min(minDegree, list.length)
    maxDegree = Math.max(maxDegree, list.length)
    total += list.length
  }
  return { neighbours, minDegree, maxDegree, meanDegree: total / nodes, bridges }
}

/** Links every component the gateway cannot reach to a random reachable node. */
function connect (adjacency: Array<Set<number>>, random: () => number): number {
  const nodes = adjacency.length
  const reached = new Uint8Array(nodes)
  const reachable: number[] = []
  const visit = (start: number): void => {
    const stack = [start]
    reached[start] = 1
    while (stack.length > 0) {
      const node = stack.pop() as number
      reachable.push(node)
      for (const next of adjacency[node] as Set<number>) {
        if (reached[next] === 0) {
          reached[next] = 1
          stack.push(next)
        }
      }
    }
  }
  visit(0)
  let bridges = 0
  for (let node = 0; node < nodes; node++) {
    if (reached[node] === 1) continue
    const anchor = reachable[Math.floor(random() * reachable.length)] as number
    adjacency[node]?.add(anchor)
    adjacency[anchor]?.add(node)
    bridges++
    visit(node)
  }
  return bridges
}

function shuffled (count: number, random: () => number): number[] {
  const items = Array.from({ length: count }, (_, i) => i)
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const a = items[i] as number
    items[i] = items[j] as number
    items[j] = a
  }
  return items
}
