/**
 * @jest-environment-options {"database": false}
 */
import { SEED_OPERATIONS } from '@blog/shared';
import {
  canonicalRead,
  checkWrite,
  fillWrite,
  firstDifference,
  readRequest,
  recentPostsDocument,
  writeRequests,
  AUTHOR_SLOT,
  POST_SLOT,
} from './documents';

describe('documents', () => {
  test('our documents are the seed documents (GetRecentPosts at limit 5 verbatim)', () => {
    const seed = SEED_OPERATIONS.GetRecentPosts;
    expect(recentPostsDocument(5)).toBe(seed);
    expect(readRequest('ours', 'recent5', 'x').query).toBe(seed);
    expect(readRequest('apollo', 'recent5', 'x').query).toBe(seed);
    expect(readRequest('postgraphile', 'recent5', 'x').query).toContain('allTbPostsList(first: 5');
  });

  test("PostGraphile's answer and ours reduce to the same canonical form", () => {
    const ours = {
      posts: [
        {
          id: 'p1',
          title: 'T',
          author: { username: 'u', fullName: 'U' },
          commentCount: 1,
          comments: [{ content: 'c', author: { username: 'v' } }],
        },
      ],
    };
    const postgraphile = {
      posts: [
        {
          id: 'p1',
          title: 'T',
          author: { username: 'u', fullName: 'U' },
          commentCount: { totalCount: 1 },
          comments: [{ content: 'c', author: { username: 'v' } }],
        },
      ],
    };
    expect(canonicalRead('recent5', postgraphile)).toEqual(canonicalRead('recent5', ours));
    expect(
      canonicalRead('user', { user: { username: 'u', fullName: 'U', publishedPostCount: { totalCount: 2 }, commentCount: 3 } }),
    ).toEqual({
      username: 'u',
      fullName: 'U',
      publishedPostCount: 2,
      commentCount: 3,
    });
    expect(() => canonicalRead('recent5', { posts: null })).toThrow(/not a list/);
  });

  test('firstDifference names the first differing place', () => {
    expect(firstDifference({ a: [1, 2] }, { a: [1, 2] })).toBeUndefined();
    expect(firstDifference({ a: [1, 3] }, { a: [1, 2] })).toBe('data.a[1]: 3 instead of 2');
    expect(firstDifference([1], [1, 2])).toBe('data: 1 items instead of 2');
  });

  test('write documents carry slots the load generator fills; answers are checked', () => {
    const ours = writeRequests('ours', 'INLINE');
    expect(ours.createPost.query).toContain('sync: INLINE');
    expect(writeRequests('apollo').createPost.query).not.toContain('sync:');
    expect(ours.addComment.variables).toEqual({ postId: POST_SLOT, authorId: AUTHOR_SLOT });
    expect(fillWrite(ours.addComment, { authorId: 'a', postId: 'p' }).variables).toEqual({ postId: 'p', authorId: 'a' });
    const id = '00000000-0000-0000-0000-000000000001';
    expect(checkWrite('createPost', { createPost: { id, title: 'My New Post', author: { username: 'bob' } } }, 'bob')).toBeUndefined();
    expect(
      checkWrite('createComment', { createComment: { comment: { id, content: 'Great post!', author: { username: 'bob' } } } }, 'bob'),
    ).toBeUndefined();
    expect(checkWrite('createPost', { createPost: { id: 'x', title: 'My New Post', author: { username: 'bob' } } }, 'bob')).toMatch(
      /not a uuid/,
    );
    expect(checkWrite('createPost', { createPost: { id, title: 'My New Post', author: { username: 'al' } } }, 'bob')).toMatch(
      /expected bob/,
    );
  });
});
