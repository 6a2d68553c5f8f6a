-- 004: the answer of a read, sent only when it is small enough.
--
-- The API builds a read's whole answer in one statement (json_build_object(...)::text). A client can
-- ask for answers of hundreds of megabytes, which the API would receive, hold and could not even
-- turn into a string past Node's limit. The read statements wrap their answer in this function with
-- MAX_RESPONSE_BYTES: the answer is returned as it is, or the statement fails with SQLSTATE 54B01
-- and the answer's size in bytes as its DETAIL, so that only the size crosses the network
-- (services/api/src/reads/read-engine.ts turns it into RESPONSE_TOO_LARGE).
--
-- A function, not a subquery measuring the answer: referring to the answer twice through a
-- subquery cost a quarter of a millisecond more per read (the seed's GetRecentPosts, measured).

CREATE FUNCTION blog_read_answer(answer text, max_bytes integer) RETURNS text
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
BEGIN
  IF octet_length(answer) > max_bytes THEN
    RAISE EXCEPTION USING
      ERRCODE = '54B01',
      MESSAGE = 'the answer of this read is larger than the limit',
      DETAIL = octet_length(answer)::text;
  END IF;
  RETURN answer;
END
$$;
