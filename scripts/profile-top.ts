// The top of a V8 CPU profile (`node --cpu-prof`), as text for docs/architecture.md.
//
//   node --import tsx scripts/profile-top.ts PROFILE.cpuprofile... [--top 15]
//
// Several profiles (runs of one side) are summed. Prints self time per function (name,
// file:line) and per group — idle, garbage collection,
// native code and each package or src/ module — as a share of the whole profile, so a
// before/after pair reads side by side. Wall time, not CPU time: "(idle)" is the main thread
// waiting (for the disk, the network, or a thread-pool job).
import { readFile } from 'node:fs/promises'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

function groupOf (frame: CallFrame): string {
  const { functionName, url } = frame
  if (functionName === '(idle)' || functionName === '(garbage collector)' || functionName === '(program)') return functionName
  if (url === '') return '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg?.[1] !== undefined) return pkg[1]
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0]
  const own = /\/src\/([^/]+)\/[^/]+$/.exec(url)
  if (own?.[1] !== undefined) return `shoal ${own[1]}`
  return url
}

function place (frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(node_modules|src|dist|scripts)\//, '$1/')
  return `${frame.functionName === '' ? '(anonymous)' : frame.functionName} ${file === '' ? '' : `${file}:${frame.lineNumber + 1}`}`.trim()
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const topAt = args.indexOf('--top')
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 15
  const paths = args.filter((a, i) => !a.startsWith('--') && (topAt < 0 || i !== topAt + 1))
  if (paths.length === 0) throw new Error('usage: scripts/profile-top.ts PROFILE.cpuprofile... [--top N]')
  const selfByPlace = new Map<string, number>()
  const selfByGroup = new Map<string, number>()
  let total = 0
  for (const path of paths) {
    const profile = JSON.parse(await readFile(path, 'utf8')) as Profile
    const byId = new Map(profile.nodes.map(n => [n.id, n]))
    for (let i = 0; i < profile.samples.length; i++) {
      const node = byId.get(profile.samples[i] ?? -1)
      const dt = profile.timeDeltas[i] ?? 0
      if (node === undefined) continue
      total += dt
      const key = place(node.callFrame)
      selfByPlace.set(key, (selfByPlace.get(key) ?? 0) + dt)
      const group = groupOf(node.callFrame)
      selfByGroup.set(group, (selfByGroup.get(group) ?? 0) + dt)
    }
  }
  // Share of all samples, and milliseconds per profile (a run of one side) to compare runs of different lengths.
  const pct = (us: number): string => `${(100 * us / total).toFixed(1).padStart(5)}% ${(us / paths.length / 1000).toFixed(0).padStart(5)} ms`
  console.log(`${paths.length} profile(s): ${(total / 1e6 / paths.length).toFixed(2)} s sampled per profile`)
  console.log('self time by group:')
  for (const [group, us] of [...selfByGroup].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${group}`)
  console.log('self time by function:')
  for (const [key, us] of [...selfByPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${key}`)
}

await main()
