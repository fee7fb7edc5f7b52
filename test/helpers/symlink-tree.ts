import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Written by snapdir's own tool (snapdir-manifest 0.4.2 from github:bermi/snapdir, run by hand
 * with b3sum 1.2.0 on the tree `symlinkTree` builds). A link's PERMS are its own (777); a link
 * to a file has SIZE = the length of the link text (`a.txt` → 5, `link-a` → 6, `../a.txt` → 8,
 * `big.bin` → 7) and the target's checksum; a link to a directory is a `D 777` entry over the
 * target's children; parents sum the link sizes; dangling links are left out.
 */
export const SNAPDIR_SYMLINK_GOLDEN =
  'D 755 d2f82d987f4e259c4edc33662432825dfb8e7c511d45c95236a2059018e06cfd 1572907 ./\n' +
  'F 640 8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99 6 ./a.txt\n' +
  'F 640 e489a1b85a7069e21aa81e2e6856d5dd96f36361bc59abc632b0c497ae553bae 1572869 ./big.bin\n' +
  'D 755 af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262 0 ./empty dir/\n' +
  'F 777 e489a1b85a7069e21aa81e2e6856d5dd96f36361bc59abc632b0c497ae553bae 7 ./link to big\n' +
  'F 777 8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99 5 ./link-a\n' +
  'D 777 3c4ae021558e94143de9925ecb8080a01f725a253f0246282a3a14e16d974e98 3 ./link-dir/\n' +
  'F 640 6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85 3 ./link-dir/x\n' +
  'F 777 8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99 6 ./link-to-link\n' +
  'D 700 324ad06682fc9811f3128395f818cf7b0fc3a3f6a89ab7635fef93ba3a48b113 11 ./nested/\n' +
  'D 755 3c4ae021558e94143de9925ecb8080a01f725a253f0246282a3a14e16d974e98 3 ./nested/deep/\n' +
  'F 640 6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85 3 ./nested/deep/x\n' +
  'F 777 8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99 8 ./nested/up-a\n'
/** b3sum of the golden text: the snapdir ID snapdir gives the tree. */
export const SNAPDIR_SYMLINK_GOLDEN_ID = '435c0d89ef6ae2d5aa00c9976b39574149c3194ed3afd56f6cdd646bb7d65313'
export const BIG_SIZE = 1572869

/** The tree the golden manifest was taken from: links to files, to a directory, to a link, up a level, and two dangling ones. */
export async function symlinkTree (root: string): Promise<void> {
  await mkdir(join(root, 'nested/deep'), { recursive: true })
  await mkdir(join(root, 'empty dir'))
  await writeFile(join(root, 'a.txt'), 'hello\n')
  await writeFile(join(root, 'nested/deep/x'), 'abc')
  await writeFile(join(root, 'big.bin'), Buffer.alloc(BIG_SIZE, 7))
  await symlink('a.txt', join(root, 'link-a'))
  await symlink('nested/deep', join(root, 'link-dir'))
  await symlink('../a.txt', join(root, 'nested/up-a'))
  await symlink('link-a', join(root, 'link-to-link'))
  await symlink('big.bin', join(root, 'link to big'))
  await symlink('missing', join(root, 'dangling'))
  await symlink('../nowhere', join(root, 'nested/deep/dangling-too'))
  for (const file of ['nested/deep/x', 'a.txt', 'big.bin']) await chmod(join(root, file), 0o640)
  await chmod(join(root, 'nested'), 0o700)
  for (const dir of ['nested/deep', 'empty dir', '.']) await chmod(join(root, dir), 0o755)
}
